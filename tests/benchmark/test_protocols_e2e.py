"""One end-to-end test per protocol (e2e, length-ablation) and reproduce's resume, on the tiny dataset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.runner import execute

pytestmark = pytest.mark.e2e


@pytest.fixture
def with_generator(test_registry):
    pytest.importorskip("fc4dfs_nn_baseline", reason="example plugin not installed")
    return test_registry


def test_e2e_protocol_scores_every_metric_and_a_gt_row(with_generator, tmp_path: Path):
    cfg = RunConfig(protocol="e2e", dataset="tiny", generator="nn_retrieval", decoder="sgd_linear", budget="smoke")
    res = execute(cfg, out_dir=tmp_path, leaderboard=tmp_path / "lb.csv", progress=False, reg=with_generator,
                  render=False)
    rows = res.record["rows"]
    main, gt = rows[0], rows[1]
    assert {"e_lm", "e_mesh", "smoothness"} <= set(main["metrics"])
    assert {"ca", "ca_mesh", "fid"} <= set(main["metrics"])
    assert gt["generator"] == "gt" and "ca" in gt["metrics"]
    assert all(np.isfinite(v) for v in main["metrics"].values())
    per_item = json.loads((res.run_dir / "per_item.json").read_text())
    assert len(per_item["e2e"]["e_mesh"]) == main["n_items"] == 12
    assert (res.run_dir / "examples.npz").exists()


def test_length_ablation_honours_lengths(with_generator, tmp_path: Path):
    cfg = RunConfig(protocol="length-ablation", dataset="tiny", generator="nn_retrieval", decoder="sgd_linear",
                    budget="smoke", protocol_options={"lengths": [9, 14]})
    res = execute(cfg, out_dir=tmp_path, leaderboard=None, progress=False, reg=with_generator, render=False)
    rows = res.record["rows"]
    assert [r["setting"] for r in rows] == ["length=9", "length=14"]
    assert all(r["metrics"]["e_mesh"] > 0 and np.isfinite(r["metrics"]["e_lm"]) for r in rows)
    with np.load(res.run_dir / "examples.npz") as z:
        assert z["pred_mesh_0"].shape[0] == 14 and z["gt_mesh_0"].shape[0] == 14


def test_reproduce_resumes_after_an_interruption(with_generator, tmp_path: Path, monkeypatch):
    from fc4dfs.benchmark import reproduce as rp
    from fc4dfs.benchmark import runner

    reg = with_generator
    reg._specs["generator"] = {"nn_retrieval": reg.get("generator", "nn_retrieval")}
    reg._specs["decoder"] = {"sgd_linear": reg.get("decoder", "sgd_linear")}
    real = runner.execute
    calls = {"n": 0}

    def flaky(config, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(config, **kw)

    monkeypatch.setattr(runner, "execute", flaky)
    kw = dict(dataset="tiny", budget="smoke", out_dir=tmp_path / "runs", report_dir=tmp_path / "report",
              seeds=[0, 1], tables=("2", "3"), progress=False, reg=reg, log=lambda s: None,
              dataset_options={})
    with pytest.raises(KeyboardInterrupt):
        rp.reproduce(**kw)
    monkeypatch.setattr(runner, "execute", real)
    finished_before = {p.parent.name for p in (tmp_path / "runs").glob("*/record.json")}
    assert len(finished_before) == 1
    path = rp.reproduce(**kw)
    report = path.read_text()
    assert len(pd.read_csv(tmp_path / "report" / "leaderboard.csv")) > 0
    rp.reproduce(**kw, leaderboard=tmp_path / "elsewhere.csv")  # finished runs are reused, rows land there
    assert len(pd.read_csv(tmp_path / "elsewhere.csv")) == len(pd.read_csv(tmp_path / "report" / "leaderboard.csv"))
    assert "Table 2" in report and "sgd_linear" in report and "Missing components" in report
    assert "decoder 'miadnet' is not registered" in report
    data = json.loads((tmp_path / "report" / "report-smoke.json").read_text())
    assert all(r["status"] == "ok" for r in data["runs"])
    rec = json.loads(next(p for p in (tmp_path / "runs").glob("*/record.json")
                          if p.parent.name in finished_before).read_text())
    assert rec["status"] == "ok"


def test_reproduce_table5_reuses_the_table2_decoder_runs():
    from fc4dfs.benchmark import paper_tables as paper
    from fc4dfs.benchmark import reproduce as rp
    from fc4dfs.plugins.manager import registry

    plan = rp.make_plan(registry(), "synthetic", "quick", [0], "cpu", {}, ("2", "Z5"))
    t5 = [p for p in plan.runs if p.table == "Z5"]
    assert [p.label for p in t5] == list(paper.ZOU_TABLE5["Identity split"]) and not plan.missing
    assert {p.config.run_id for p in t5} <= {p.config.run_id for p in plan.runs if p.table == "2"}
    report = rp.build_report(plan, "synthetic", "quick", 0.0)
    assert "## Zou et al. 2023 Table 5" in report and "| lgmd | — |  | 0.50 ± 0.58 |" in report
    assert "| lgmd-noattn | — |  | 0.57 ± 0.64 |" in report
    assert "lgmd beats S2D on unseen identities (Zou et al. Table 5) | **not measured**" in report
