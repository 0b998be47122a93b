"""The one train-or-load path (component store), damaged stored files, checkpoint hashes, input checks and the
run-folder lock."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.runner import RunBusyError, RunContext, execute, instantiate, run_lock_path
from fc4dfs.plugins.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.plugins.contracts import Budget
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.store import store_key, train_or_load
from fc4dfs.zoo.training import TrainStateError, read_train_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
import h6_fixture_plugin  # noqa: E402


@pytest.fixture
def reg(tmp_path, monkeypatch):
    from fc4dfs.plugins.manager import discover, set_registry

    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    r = discover(extra=[(h6_fixture_plugin, "h6-fixtures")])
    set_registry(r)
    yield r
    set_registry(None)


@pytest.fixture
def fits(monkeypatch) -> list[str]:
    """Names of the components whose ``fit`` ran (counts trainings, not wall time)."""
    calls: list[str] = []
    for cls in (h6_fixture_plugin.MeanCurveGenerator, h6_fixture_plugin.RidgeDecoder):
        real = cls.fit

        def fit(self, *a, _real=real, **k):
            calls.append(self.name)
            return _real(self, *a, **k)

        monkeypatch.setattr(cls, "fit", fit)
    return calls


def _run_context(reg, tmp_path: Path, budget: Budget = Budget("smoke")) -> RunContext:
    cfg = RunConfig(protocol="e2e", dataset="h6_tiny", generator="h6_meancurve", decoder="h6_ridge",
                    budget=budget.name, budget_overrides=dict(budget.overrides), seed=0)
    return RunContext(cfg, reg, tiny_dataset(), tmp_path / "run", progress=False)


def test_a_component_trained_by_run_is_reused_by_generate(reg, fits, tmp_path) -> None:
    from fc4dfs.benchmark.commands.generate import trained

    ctx = _run_context(reg, tmp_path)
    train_ids = ctx.dataset.generator_split()[0]
    for kind in ("generator", "decoder"):
        ctx.fit(ctx.make(kind), train_ids, kind)
    assert fits == ["h6_meancurve", "h6_ridge"]
    for kind, name in (("generator", "h6_meancurve"), ("decoder", "h6_ridge")):
        got = trained(reg, kind, name, ctx.dataset, Budget("smoke"), 0, progress=False)
        assert got.cached
        assert got.path.samefile(ctx.run_dir / "checkpoints" / f"{kind}.safetensors")
    assert fits == ["h6_meancurve", "h6_ridge"]


def test_a_component_trained_by_generate_is_reused_by_run(reg, fits, tmp_path, capsys) -> None:
    from fc4dfs.benchmark.cli import main

    rc = main(["generate", "--gen", "h6_meancurve", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
               "--label", "expr1", "--length", "6", "--out", str(tmp_path / "g"), "--no-preview", "--formats", "npz"])
    assert rc == 0, capsys.readouterr().err
    assert fits == ["h6_meancurve", "h6_ridge"]
    ctx = _run_context(reg, tmp_path)
    train_ids = ctx.dataset.generator_split()[0]
    for kind in ("generator", "decoder"):
        _, seconds = ctx.fit(ctx.make(kind), train_ids, kind)
        assert seconds == 0.0
    assert fits == ["h6_meancurve", "h6_ridge"]


@pytest.mark.parametrize("kind,name", [("generator", "h6_meancurve"), ("decoder", "h6_ridge"),
                                       ("generator", "mlp"), ("decoder", "pca")])
def test_budget_overrides_change_the_key(reg, kind, name) -> None:
    comp = instantiate(reg, kind, name, {})
    fp, ids = tiny_dataset().fingerprint, ["id00", "id01"]
    keys = {store_key(comp, fp, ids, b, 0) for b in (Budget("smoke"), Budget("smoke", {"epochs": 1}),
                                                      Budget("smoke", {"epochs": 2}), Budget("quick"))}
    assert len(keys) == 4
    assert store_key(comp, fp, ids, Budget("smoke"), 0) != store_key(comp, fp, ids, Budget("smoke"), 1)


def test_budget_overrides_reach_the_run_training(reg, tmp_path, monkeypatch) -> None:
    seen: list[Budget] = []
    real = h6_fixture_plugin.MeanCurveGenerator.fit

    def fit(self, data, budget, **k):
        seen.append(budget)
        return real(self, data, budget, **k)

    monkeypatch.setattr(h6_fixture_plugin.MeanCurveGenerator, "fit", fit)
    ctx = _run_context(reg, tmp_path, Budget("smoke", {"epochs": 1}))
    ctx.fit(ctx.make("generator"), ctx.dataset.generator_split()[0], "generator")
    assert seen == [Budget("smoke", {"epochs": 1})]


def test_a_damaged_stored_component_is_named_and_retrained(reg, fits, tmp_path) -> None:
    ds = tiny_dataset()
    ids = ds.generator_split()[0]
    first = train_or_load(instantiate(reg, "decoder", "h6_ridge", {}), ds, ids, Budget("smoke"), 0, progress=False)
    size = first.path.stat().st_size
    with open(first.path, "r+b") as f:  # truncated, as after a disk error
        f.truncate(size // 2)
    said: list[str] = []
    again = train_or_load(instantiate(reg, "decoder", "h6_ridge", {}), ds, ids, Budget("smoke"), 0,
                          progress=False, log=said.append)
    assert not again.cached and fits == ["h6_ridge", "h6_ridge"]
    assert len(said) == 1 and "damaged" in said[0] and str(first.path) in said[0]
    assert train_or_load(instantiate(reg, "decoder", "h6_ridge", {}), ds, ids, Budget("smoke"), 0,
                         progress=False).cached


def test_overwritten_tensor_bytes_are_refused(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.arange(64, dtype=torch.float32)}, {"x": 1})
    data = bytearray(path.read_bytes())
    data[-8:] = b"\x00" * 8  # the last two floats, inside the tensor data; the header is intact
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256") as e:
        read_checkpoint(path)
    assert str(path) in str(e.value)


def test_a_damaged_or_foreign_training_state_is_named_not_executed(tmp_path) -> None:
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    foreign = tmp_path / "g.train_state.pt"
    torch.save({"config_hash": "x", "epoch": 1, "evil": Evil()}, foreign)
    with pytest.raises(TrainStateError) as e:
        read_train_state(foreign)
    msg = str(e.value)
    assert str(foreign) in msg and "\n" not in msg and "weights_only=False" not in msg and not marker.exists()
    truncated = tmp_path / "t.train_state.pt"
    truncated.write_bytes(b"PK\x03\x04broken")
    with pytest.raises(TrainStateError, match="t.train_state.pt"):
        read_train_state(truncated)


def test_resume_with_a_damaged_training_state_is_a_user_error_naming_it(reg, tmp_path, capsys) -> None:
    from fc4dfs.benchmark.cli import main

    ctx = _run_context(reg, tmp_path)
    ctx.fit(ctx.make("decoder"), ctx.dataset.generator_split()[0], "decoder")  # now in the store
    state = tmp_path / "run" / "train" / "decoder" / "h6_ridge.train_state.pt"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(b"not a torch file")
    ctx.resume = True
    with pytest.raises(Exception) as e:
        ctx.fit(ctx.make("decoder"), ctx.dataset.generator_split()[0], "decoder")
    assert str(state) in str(e.value) and "--force" in str(e.value)
    from fc4dfs.benchmark.errors import user_error_types

    assert isinstance(e.value, user_error_types())


def test_nan_inf_and_fractional_lengths_are_refused_by_the_contract(reg) -> None:
    ds = tiny_dataset()
    ids = ds.generator_split()[0]
    gen = train_or_load(instantiate(reg, "generator", "h6_meancurve", {}), ds, ids, Budget("smoke"), 0,
                        progress=False).component
    dec = train_or_load(instantiate(reg, "decoder", "h6_ridge", {}), ds, ids, Budget("smoke"), 0,
                        progress=False).component
    neutral = ds.neutral(ids[0])[None]
    nlm = ds.topology.landmarks(neutral)
    label = [ds.labels[0]]
    bad = nlm.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ComponentError, match="neutral_landmarks contains NaN"):
        gen.generate(bad, label, 8)
    with pytest.raises(ComponentError, match="integer"):
        gen.generate(nlm, label, 10.7)
    lms = gen.generate(nlm, label, np.int64(8))
    assert lms.shape[1] == 8
    lms[0, 2, 5, 0] = np.inf
    with pytest.raises(ComponentError, match="landmarks contains NaN or Inf"):
        dec.decode(neutral, nlm, lms)


def test_an_identical_run_waits_for_a_live_owner_and_names_its_lock(reg, tmp_path) -> None:
    cfg = RunConfig(protocol="e2e", dataset="h6_tiny", generator="h6_meancurve", decoder="h6_ridge",
                    budget="smoke", seed=0)
    out = tmp_path / "runs"
    out.mkdir()
    lock = run_lock_path(out / cfg.run_id)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; l = FileLock(sys.argv[1]); l.acquire(); "
        "print('held', flush=True); time.sleep(60)"), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said: list[str] = []
        with pytest.raises(RunBusyError) as e:
            execute(cfg, out_dir=out, leaderboard=None, progress=False, reg=reg, lock_timeout=0.2, log=said.append)
        assert str(lock) in str(e.value) and "live process" in str(e.value) and "--force" not in str(e.value)
        assert len(said) == 1 and "waiting" in said[0]
        assert not (out / cfg.run_id).exists()  # nothing of the owner's run was touched
    finally:
        holder.kill()
        holder.wait()
    # the owner died: the lock is free again and an unfinished folder suggests --resume/--force
    (out / cfg.run_id).mkdir()
    with pytest.raises(Exception, match="process has ended; pass --resume"):
        execute(cfg, out_dir=out, leaderboard=None, progress=False, reg=reg, lock_timeout=0.2)
