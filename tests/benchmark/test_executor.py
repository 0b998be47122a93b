"""Executors: ``sweep`` grids, the local path without Ray, and the Ray executor against the local one."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from fc4dfs.benchmark.cli import main
from fc4dfs.benchmark.commands.sweep import grid_points, parse_grid
from fc4dfs.benchmark.errors import UserError

TESTS = Path(__file__).resolve().parents[1]


def test_grid_is_the_product_of_its_axes():
    grid = parse_grid(["gen_opt.temporal_alpha=0,0.1,0.3", "protocol_opt.lengths=[[20,30],[40]]"])
    assert grid == [("generator_options", "temporal_alpha", [0, 0.1, 0.3]), ("protocol_options", "lengths",
                                                                             [[20, 30], [40]])]
    points = grid_points(grid)
    assert len(points) == 6
    assert points[0] == {"generator_options": {"temporal_alpha": 0}, "protocol_options": {"lengths": [20, 30]}}
    assert points[-1] == {"generator_options": {"temporal_alpha": 0.3}, "protocol_options": {"lengths": [40]}}


@pytest.mark.parametrize("axis", ["gen.temporal_alpha=0,1", "gen_opt=0,1", "gen_opt.temporal_alpha=",
                                  "gen_opt.temporal_alpha=0,0", "gen_opt.temporal_alpha=0,,1"])
def test_bad_grid_axis_is_refused(axis):
    with pytest.raises(UserError, match="--grid"):
        parse_grid([axis])


@pytest.mark.parametrize("grid, named", [("gen_opt.temporal_alphaa=0,0.1", "temporal_alphaa"),
                                         ("gen_opt.temporal_alpha=0,abc", "temporal_alpha=abc"),
                                         ("bogus.x=1", "--grid")])
def test_sweep_bad_grid_is_one_line_exit_2_before_any_run(tmp_path, capsys, grid, named):
    out, board = tmp_path / "runs", tmp_path / "lb.csv"
    code = main(["sweep", "--gen", "fc_lstm", "--dec", "s2d", "--budget", "smoke", "--grid", grid,
                 "--seeds", "0,1", "--out", str(out), "--leaderboard", str(board)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("fc4dfs-bench: error: ") and err.count("\n") == 1 and named in err, err
    assert not out.exists() or not any(out.iterdir())
    assert not board.exists()


def test_ray_options_need_the_ray_executor(tmp_path, capsys):
    code = main(["run", "--protocol", "decoder-cv", "--dec", "pca", "--budget", "smoke", "--ray-address", "auto",
                 "--out", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "lb.csv")])
    assert code == 2 and "--ray-address needs --executor ray" in capsys.readouterr().err


def test_local_executor_never_imports_ray(tmp_path, subprocess_env):
    code = ("import sys; from fc4dfs.benchmark.cli import main; "
            "rc = main(sys.argv[1:]); assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    args = ["sweep", "--dataset", "tiny", "--protocol", "decoder-cv", "--dec", "sgd_linear", "--budget", "smoke",
            "--grid", "protocol_opt.folds=2,3", "--threads", "1", "--out", str(tmp_path / "runs"),
            "--leaderboard", str(tmp_path / "lb.csv")]
    proc = subprocess.run([sys.executable, "-c", code, *args], env=subprocess_env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "protocol_opt" not in proc.stdout and "folds=2" in proc.stdout, proc.stdout
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/config.json")]
    assert len(configs) == 2 and all(c["threads"] == 1 for c in configs)


def test_thread_limit_caps_torch_and_blas_then_restores_them():
    """``RunConfig.threads`` holds for numpy's BLAS too: with two BLAS threads a PCA's SVD differs from one
    thread's in the last bits, and Ray workers run with one."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    from fc4dfs.benchmark.runner import thread_limit

    np.linalg.svd(np.eye(4))  # BLAS loaded
    before = torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()]
    n = before[0] + 1
    with thread_limit(n):
        assert torch.get_num_threads() == n
        assert [pool["num_threads"] for pool in threadpool_info()] == [n] * len(before[1]), threadpool_info()
    assert (torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()]) == before


# --------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray with 2 CPUs whose workers see the test components and a cache of their own."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[distributed]')")
    saved = {k: os.environ.get(k) for k in ("FC4DFS_CACHE", "FC4DFS_PLUGINS", "PYTHONPATH")}
    os.environ["FC4DFS_CACHE"] = str(tmp_path_factory.mktemp("ray-cache"))
    os.environ["FC4DFS_PLUGINS"] = "fc4dfs_test_components"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved["PYTHONPATH"]]))
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield ray
    ray.shutdown()


#: leaderboard columns that legitimately differ between two executions of the same run: when it started,
#: how long its training and evaluation took (wall clock), and the commit (read as each run starts: an edit
#: of the source tree during the test marks the later runs "-dirty")
NOT_RESULTS = {"utc_time", "train_seconds", "eval_seconds", "git_commit"}


def _metrics(board: Path) -> pd.DataFrame:
    rows = pd.read_csv(board, dtype=str, keep_default_na=False)
    keep = sorted(c for c in rows.columns if c not in NOT_RESULTS)  # columns come in the order runs finished
    return rows[keep].sort_values(keep).reset_index(drop=True)


#: the whole reproduction's dataset in the test: ~0.5 k instead of ~1.7 k vertices, 144 instead of 288 sequences
SMALL_SYNTHETIC = ["--dataset-opt", "resolution=small", "--dataset-opt", "repetitions=1"]


def _report(folder: Path) -> str:
    """The reproduction report without what the clock measured: its wall-time line and its cost section."""
    kept, timing = [], False
    for line in (folder / "report-smoke.md").read_text().splitlines():
        if line.startswith("## "):
            timing = line == "## Cost per run"
        if not timing and not line.startswith("Wall time:"):
            kept.append(line)
    return "\n".join(kept)


@pytest.mark.slow
def test_ray_reproduce_gives_the_local_leaderboard(local_ray, tmp_path, monkeypatch, capsys):
    """The whole smoke reproduction, every table, on a 2-CPU Ray (one thread per run) against the local
    executor at ``--threads 1``: the same leaderboard rows, every column compared exactly (as text) but
    :data:`NOT_RESULTS`, and the same report; one progress bar with a status line per task.

    On :data:`SMALL_SYNTHETIC` (the synthetic dataset with a third of the vertices and one sequence per
    identity and expression), to fit CI's time: the plan and the code paths are those of the default set,
    except that the evaluator's classifiers are trained through the store (in each executor's own cache)
    instead of read from the shipped file."""
    from fc4dfs.benchmark.reproduce import TABLES, make_plan
    from fc4dfs.benchmark.runner import load_dataset
    from fc4dfs.plugins.manager import registry

    options = dict(opt.split("=") for opt in SMALL_SYNTHETIC[1::2])
    load_dataset("synthetic", options, registry(), progress=False)  # generated (if need be), no bar
    plan = make_plan(registry(), "synthetic", "smoke", [0], "cpu", options)
    assert {p.table for p in plan.runs} == set(TABLES) and not plan.missing, plan.missing
    n_runs = len({p.config.run_id for p in plan.runs})
    common = ["reproduce", "--dataset", "synthetic", *SMALL_SYNTHETIC, "--budget", "smoke"]
    # the local executor in a process of its own, with a cache of its own (it trains everything again),
    # alongside the Ray one: the two compete for the cores, not for the results
    env = {**os.environ, "FC4DFS_CACHE": str(tmp_path / "local-cache"), "FC4DFS_PROGRESS": "0"}
    with (tmp_path / "local.log").open("w") as log:
        local = subprocess.Popen([sys.executable, "-m", "fc4dfs.benchmark.cli", *common, "--threads", "1",
                                  "--out", str(tmp_path / "local"), "--report-dir", str(tmp_path / "local-report")],
                                 env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        monkeypatch.setenv("FC4DFS_PROGRESS", "1")
        assert main([*common, "--executor", "ray", "--out", str(tmp_path / "ray"),
                     "--report-dir", str(tmp_path / "ray-report")]) == 0
        local.wait()
    finally:
        if local.poll() is None:
            local.kill()
            local.wait()
    assert local.returncode == 0, (tmp_path / "local.log").read_text()[-3000:]
    err = capsys.readouterr().err
    status = [line.split("\r")[-1] for line in err.splitlines() if re.search(r"\[\d+/\d+\] ", line)]
    total = n_runs + sum(" component " in line for line in status)
    assert total > n_runs, err[-3000:]  # Table 1's decoders, the ablations' decoder: trained once each
    assert [line.split("]")[0] for line in status] == [f"[{i}/{total}" for i in range(1, total + 1)], err[-3000:]
    assert all(line.split()[1] == "ok" for line in status), err[-3000:]
    bars = [part for part in re.split(r"[\r\n]", err) if re.search(r"\d+%\|", part)]
    assert bars and all(b.startswith("reproduce:") for b in bars), bars[:5]  # the plan's; the runs' stay hidden
    assert f"{total}/{total} " in bars[-1], bars[-1]

    ray_rows, local_rows = (_metrics(tmp_path / f"{x}-report" / "leaderboard.csv") for x in ("ray", "local"))
    assert ray_rows["run_id"].nunique() == local_rows["run_id"].nunique() == n_runs
    assert (ray_rows["status"] == "ok").all()
    pd.testing.assert_frame_equal(ray_rows, local_rows, check_exact=True)
    assert _report(tmp_path / "ray-report") == _report(tmp_path / "local-report")
    for folder in ("ray", "local"):
        assert {json.loads(p.read_text())["threads"] for p in (tmp_path / folder).glob("*/config.json")} == {1}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ray_address_joins_a_cluster_made_by_ray_start(tmp_path, subprocess_env):
    """The README's cluster recipe on one machine: ``ray start --head`` (started without the suite's
    variables), then a driver in another folder joins it with ``--ray-address``. Its ``FC4DFS_*`` variables
    and ``PYTHONPATH`` reach the tasks (the test components load, the components land in its cache) and the
    runs land in its runs folder, given relative."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[distributed]')")
    port = _free_port()
    head_env = {k: v for k, v in os.environ.items() if not k.startswith("FC4DFS_") and k != "PYTHONPATH"}
    # Ray's token authentication (on by default for `ray start` in Ray 2.60): the head makes or reads the token
    # ~/.ray/auth_token; a driver joining it needs RAY_AUTH_MODE=token (README: "On a cluster")
    head_env["RAY_AUTH_MODE"] = "token"
    log = tmp_path / "head.log"
    # a temp folder of its own: `ray start` leaves the cluster's address there, where ray.init() would find it
    temp = Path(tempfile.mkdtemp(prefix="ray-"))
    with log.open("w") as out:
        # --block: the head lives as long as this process and stops its Ray processes on SIGTERM
        head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                                 f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                                 f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp}"],
                                env=head_env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if "Ray runtime started" in log.read_text() or head.poll() is not None:
                break
            time.sleep(0.5)
        assert head.poll() is None and "Ray runtime started" in log.read_text(), log.read_text()[-3000:]
        driver = tmp_path / "driver"
        driver.mkdir()
        env = {**subprocess_env, "FC4DFS_CACHE": str(tmp_path / "shared-cache"), "RAY_AUTH_MODE": "token"}
        proc = subprocess.run([sys.executable, "-m", "fc4dfs.benchmark.cli", "sweep", "--dataset", "tiny",
                               "--protocol", "decoder-cv", "--dec", "sgd_linear", "--budget", "smoke",
                               "--grid", "protocol_opt.folds=2,3", "--executor", "ray",
                               "--ray-address", f"127.0.0.1:{port}", "--out", "runs", "--leaderboard", "lb.csv"],
                              cwd=driver, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        head.terminate()
        head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
    assert len(list((driver / "runs").glob("*/record.json"))) == 2
    board = pd.read_csv(driver / "lb.csv")
    assert set(board["status"]) == {"ok"} and board["run_id"].nunique() == 2
    assert any((tmp_path / "shared-cache" / "components").iterdir())  # the workers' store is the driver's


def test_ray_failed_task_keeps_the_others_and_a_rerun_reuses_them(local_ray, test_registry, tmp_path, capsys):
    args = ["sweep", "--dataset", "tiny", "--protocol", "decoder-cv", "--dec", "sgd_linear", "--budget", "smoke",
            "--grid", "protocol_opt.folds=2,3,9", "--executor", "ray", "--out", str(tmp_path / "runs"),
            "--leaderboard", str(tmp_path / "lb.csv")]
    assert main(args) == 1  # 9 folds need 9 identities; tiny has 8
    err = capsys.readouterr().err
    assert err.count("failed:") == 1 and "9 folds need" in err, err
    records = sorted((tmp_path / "runs").glob("*/record.json"))
    assert len(records) == 2
    stamps = [p.stat().st_mtime_ns for p in records]
    assert main(args) == 1
    assert [p.stat().st_mtime_ns for p in records] == stamps  # finished runs were reused, not redone
    board = pd.read_csv(tmp_path / "lb.csv")
    assert set(board["status"]) == {"ok"} and board["run_id"].nunique() == 2
