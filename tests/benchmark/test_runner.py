"""The runner and CLI through test components registered with the public plugin API."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark.cli import main
from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.runner import execute
from fc4dfs.plugins import CheckpointMismatchError
from fc4dfs.plugins.testing import ConformanceError, check_decoder
from fc4dfs.datasets.fixtures import tiny_dataset


def _cli(args, env, cwd, timeout=900):
    return subprocess.run([sys.executable, "-m", "fc4dfs.benchmark.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_decoder_cv_run_writes_record_rows_and_checkpoints(test_registry, tmp_path: Path):
    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke", seed=0)
    res = execute(cfg, out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False, reg=test_registry)
    assert res.ok
    rec = json.loads((res.run_dir / "record.json").read_text())
    assert rec["status"] == "ok" and rec["provenance"]["torch_version"]
    assert rec["dataset"]["hash"] == tiny_dataset().fingerprint
    settings = [r["setting"] for r in rec["rows"]]
    assert settings == ["fold0", "fold1", "fold2", "fold3", "pooled"]
    assert all(np.isfinite(r["metrics"]["e_mesh"]) for r in rec["rows"])
    assert len(list((res.run_dir / "checkpoints").glob("*.safetensors"))) == 4
    from fc4dfs.benchmark.leaderboard import read_rows

    _, rows = read_rows(tmp_path / "lb.csv")
    assert len(rows) == 5 and {r["protocol"] for r in rows} == {"decoder-cv"}
    again = execute(cfg, out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False, reg=test_registry)
    assert again.reused and len(read_rows(tmp_path / "lb.csv")[1]) == 5


def test_a_finished_run_is_redone_when_a_component_version_changed(test_registry, tmp_path: Path, monkeypatch):
    """The run id names components, not versions: a record of an older version is not reused, and its
    leaderboard rows are replaced by the new ones (not kept beside them, not skipped as duplicates)."""
    from fc4dfs.benchmark.leaderboard import read_rows

    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke", seed=0,
                    protocol_options={"only_folds": [1]})
    kw = dict(out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False, reg=test_registry)
    first = execute(cfg, **kw)
    old = first.record["versions"]["decoder"]
    monkeypatch.setattr(test_registry.load("decoder", "sgd_linear"), "version", f"{old}.1")
    logs: list[str] = []
    again = execute(cfg, **kw, log=logs.append)
    assert again.ok and not again.reused and again.record["versions"]["decoder"] == f"{old}.1"
    assert any(f"decoder version {old} (now {old}.1)" in line for line in logs), logs
    _, rows = read_rows(tmp_path / "lb.csv")
    assert len(rows) == len(first.record["rows"]) and {r["decoder_version"] for r in rows} == {f"{old}.1"}
    assert execute(cfg, **kw).reused


def test_same_seed_reproduces_the_same_numbers(test_registry, tmp_path: Path):
    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke", seed=3,
                    protocol_options={"only_folds": [1]})
    a = execute(cfg, out_dir=tmp_path / "a", leaderboard=None, progress=False, reg=test_registry)
    b = execute(cfg, out_dir=tmp_path / "b", leaderboard=None, progress=False, reg=test_registry)
    assert a.record["rows"][0]["metrics"] == b.record["rows"][0]["metrics"]


def test_unknown_name_is_a_one_line_error_with_exit_2(test_registry, capsys):
    code = main(["run", "--dec", "sgd_linearr", "--protocol", "decoder-cv", "--dataset", "tiny"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Did you mean 'sgd_linear'" in err and "Traceback" not in err


def test_crashed_run_is_recorded_with_its_error(test_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fc4dfs.benchmark.protocols.decoder_cv import DecoderCV

    def crash(self, ctx):
        raise RuntimeError("crashed in fold 0")

    monkeypatch.setattr(DecoderCV, "run", crash)
    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke")
    with pytest.raises(RuntimeError):
        execute(cfg, out_dir=tmp_path, leaderboard=tmp_path / "lb.csv", progress=False, reg=test_registry)
    rec = json.loads((tmp_path / cfg.run_id / "record.failed.json").read_text())
    assert rec["status"] == "failed" and "fold 0" in rec["error"]["message"]
    from fc4dfs.benchmark.leaderboard import read_rows

    assert read_rows(tmp_path / "lb.csv")[1][0]["status"] == "failed"


def test_run_refused_on_user_input_leaves_no_folder_and_no_row(test_registry, tmp_path: Path):
    """Too few identities for the folds is the user's input: one error naming the option, nothing written."""
    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke",
                    dataset_options={"n_identities": 2})
    with pytest.raises(UserError, match=r"4 folds need >= 4 identities, the dataset has 2 \(--protocol-opt folds=N\)"):
        execute(cfg, out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False, reg=test_registry)
    assert not (tmp_path / "runs" / cfg.run_id).exists() and not (tmp_path / "lb.csv").exists()


def test_checkpoint_for_another_topology_or_config_is_refused(test_registry, tmp_path: Path):
    from fc4dfs_test_components import SGDLinearDecoder

    from fc4dfs.plugins.contracts import Budget
    from fc4dfs.plugins.testing import other_topology

    ds = tiny_dataset()
    dec = SGDLinearDecoder()
    dec.fit(ds.subset(ds.identities[:4]), Budget("smoke"), progress=False)
    path = dec.save(tmp_path / "d.safetensors")
    with pytest.raises(CheckpointMismatchError, match="topology"):
        SGDLinearDecoder.load(path, other_topology(ds.topology))
    with pytest.raises(CheckpointMismatchError, match="config"):
        SGDLinearDecoder.load(path, ds.topology, expect_config_hash=SGDLinearDecoder(lr=0.5).config_hash)
    SGDLinearDecoder.version = "2"
    try:
        with pytest.raises(CheckpointMismatchError, match="version"):
            SGDLinearDecoder.load(path, ds.topology)
    finally:
        SGDLinearDecoder.version = "1"


def test_conformance_kit_catches_a_broken_decoder():
    from fc4dfs_test_components import SGDLinearDecoder

    class Broken(SGDLinearDecoder):
        name = "broken"

        def decode(self, neutral_mesh, neutral_landmarks, landmarks):
            out = super().decode(neutral_mesh, neutral_landmarks, landmarks).astype(np.float64)
            out[0, 0, 0] = np.nan
            return out

    with pytest.raises(ConformanceError) as e:
        check_decoder(Broken)
    msg = str(e.value)
    assert "output float32" in msg and "no NaN/Inf" in msg
    assert check_decoder(SGDLinearDecoder).failed == []


@pytest.mark.e2e
def test_resume_after_sigkill_gives_the_uninterrupted_result(tmp_path: Path, subprocess_env):
    env = {**subprocess_env, "FC4DFS_CHECKPOINT_EVERY_S": "0.05", "FC4DFS_CACHE": str(tmp_path / "cache")}
    args = ["run", "--protocol", "decoder-cv", "--dec", "sgd_linear", "--dataset", "tiny", "--budget", "smoke",
            "--budget-opt", "epochs=120", "--protocol-opt", "only_folds=[0]", "--leaderboard", "lb.csv", "--threads", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "fc4dfs.benchmark.cli", *args, "--out", "killed"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    state = None
    while time.time() < deadline:
        found = list((tmp_path / "killed").glob("*/train/*/*.train_state.pt"))
        if found:
            state = found[0]
            time.sleep(0.3)
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state is not None, "training never wrote a state file"
    run_dir = state.parents[2]
    assert not (run_dir / "record.json").exists()
    refused = _cli([*args, "--out", "killed"], env, tmp_path)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = _cli([*args, "--out", "killed", "--resume"], env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rec = json.loads((run_dir / "record.json").read_text())
    from fc4dfs.plugins.checkpoint import read_checkpoint

    _, header = read_checkpoint(run_dir / "checkpoints" / "decoder-fold0.safetensors")
    assert header["train_report"]["resumed_from"] > 0
    fresh = _cli([*args, "--out", "fresh"], {**env, "FC4DFS_CACHE": str(tmp_path / "cache2")}, tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    rec2 = json.loads(next((tmp_path / "fresh").glob("*/record.json")).read_text())
    assert rec["rows"][0]["metrics"]["e_mesh"] == pytest.approx(rec2["rows"][0]["metrics"]["e_mesh"], rel=1e-6)


@pytest.mark.e2e
@pytest.mark.parametrize("components", [["--gen", "nn_retrieval", "--dec", "sgd_linear"], ["--pipeline", "potamias"]],
                         ids=["chain", "pipeline"])
def test_same_command_and_seed_in_two_processes_is_bit_identical(tmp_path: Path, subprocess_env, components):
    """Two processes, each with its own empty cache (so each trains its components and classifiers) and its
    own ``PYTHONHASHSEED`` (so any iteration over a set of strings changes order), give exactly the same
    metrics: no tolerance, any difference is a determinism bug."""
    if components[0] == "--gen":
        pytest.importorskip("fc4dfs_nn_baseline", reason="example plugin not installed")
    args = ["run", "--no-progress", "--protocol", "e2e", *components, "--dataset", "tiny", "--budget", "smoke",
            "--seed", "3", "--threads", "1"]
    records = []
    for k in range(2):
        env = {**subprocess_env, "FC4DFS_CACHE": str(tmp_path / f"cache{k}"), "PYTHONHASHSEED": str(k + 1)}
        proc = _cli([*args, "--out", f"runs{k}", "--leaderboard", f"lb{k}.csv"], env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        records.append(json.loads(next((tmp_path / f"runs{k}").glob("*/record.json")).read_text()))
    first, second = ([r["metrics"] for r in rec["rows"]] for rec in records)
    assert first == second, f"metrics differ between two identical processes:\n{first}\n{second}"
    assert {"ca", "ca_mesh", "fid"} <= set(first[0])
