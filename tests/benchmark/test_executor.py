"""Executors: ``sweep`` grids, the local path without Ray, and the Ray executor against the local one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield ray
    ray.shutdown()


def _metrics(board: Path) -> pd.DataFrame:
    rows = pd.read_csv(board)
    keep = [c for c in rows.columns if c not in {"utc_time", "train_seconds", "eval_seconds", "git_commit"}]
    return rows[keep].sort_values(["run_id", "setting", "generator", "decoder", "fold"]).reset_index(drop=True)


def test_ray_reproduce_gives_the_local_leaderboard(local_ray, tmp_path, monkeypatch, capsys):
    """Table 3 only (5 runs sharing one decoder): the whole smoke reproduction takes too long here."""
    common = ["--no-progress", "reproduce", "--dataset", "synthetic", "--budget", "smoke", "--tables", "3"]
    assert main([*common, "--executor", "ray", "--out", str(tmp_path / "ray"),
                 "--report-dir", str(tmp_path / "ray-report")]) == 0
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "local-cache"))  # the local runs train everything again
    assert main([*common, "--threads", "1", "--out", str(tmp_path / "local"),
                 "--report-dir", str(tmp_path / "local-report")]) == 0
    capsys.readouterr()
    ray_rows, local_rows = _metrics(tmp_path / "ray-report" / "leaderboard.csv"), _metrics(
        tmp_path / "local-report" / "leaderboard.csv")
    assert len(ray_rows) == len(local_rows) > 0
    assert (ray_rows["status"] == "ok").all()
    pd.testing.assert_frame_equal(ray_rows, local_rows, check_exact=True)
    for folder in ("ray", "local"):
        assert {json.loads(p.read_text())["threads"] for p in (tmp_path / folder).glob("*/config.json")} == {1}


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
