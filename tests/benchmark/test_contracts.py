"""The protocol/metric/option contracts: declared options refused with "did you mean", typed rows,
metrics from plugins in every protocol, and leaderboard rows that keep configurations apart."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark import leaderboard as lb
from fc4dfs.benchmark.cli import main
from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.runner import execute
from fc4dfs.plugins.contracts import (ComponentError, Option, ResultRow, budget_options, check_options,
                                      options_from_signature)


def _one_line_error(capsys, args: list[str], *expect: str) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}: {err}"
    assert "\n" not in err and "Traceback" not in err, err
    for e in expect:
        assert e in err, f"{e!r} not in {err!r}"
    return err


def test_check_options_names_the_closest_option_and_the_range():
    declared = {"length": Option("length", int, None, low=2, high=100, nullable=True),
                "samples": Option("samples", int, 3, low=0)}
    with pytest.raises(ComponentError, match=r"no option 'lenght'; did you mean 'length'\?"):
        check_options("protocol 'x'", {"lenght": 20}, declared)
    with pytest.raises(ComponentError, match=r"length=-3 is out of range: it must be an integer >= 2 and <= 100"):
        check_options("protocol 'x'", {"length": -3}, declared)
    with pytest.raises(ComponentError, match="an integer"):
        check_options("protocol 'x'", {"samples": 2.5}, declared)
    assert check_options("protocol 'x'", {"length": 20.0, "samples": 0}, declared) == {"length": 20, "samples": 0}
    assert check_options("anything", {"whatever": 1}, None) == {"whatever": 1}


def test_option_sets_are_derived_from_signatures_and_budget_tables():
    def factory(root: str | None = None, identities: int = 12, fps: float = 30.0, kinds=("a", "b"), **unknown):
        return None

    opts = options_from_signature(factory)
    assert set(opts) == {"root", "identities", "fps", "kinds"}
    assert opts["identities"].type is int and opts["root"].type is None and opts["kinds"].type is list
    assert options_from_signature(lambda **kw: None) is None  # takes anything
    b = budget_options([{"smoke": {"epochs": 2, "lr": 1e-3, "decay": 0.0}, "quick": {"epochs": 50}}])
    assert b["epochs"].type is int and b["epochs"].low == 0 and b["epochs"].low_open
    assert b["lr"].type is float and b["decay"].low == 0 and not b["decay"].low_open


def test_unknown_or_out_of_range_options_are_refused_before_any_work(test_registry, tmp_path: Path, capsys):
    out = tmp_path / "runs"
    base = ["run", "--dataset", "tiny", "--budget", "smoke", "--out", str(out), "--leaderboard", str(tmp_path / "lb.csv")]
    dcv = base + ["--protocol", "decoder-cv", "--dec", "sgd_linear"]
    e2e = base + ["--protocol", "e2e", "--gen", "mlp", "--dec", "sgd_linear"]
    _one_line_error(capsys, e2e + ["--protocol-opt", "lenght=20"], "--protocol-opt", "did you mean 'length'?")
    _one_line_error(capsys, e2e + ["--protocol-opt", "length=-3"], "length=-3", ">= 2")
    _one_line_error(capsys, dcv + ["--protocol-opt", "only_folds=[7]"], "only_folds", "0 .. 3")
    _one_line_error(capsys, base + ["--protocol", "length-ablation", "--gen", "mlp", "--dec", "sgd_linear",
                                    "--protocol-opt", "lengths=[20,1]"], "lengths", ">= 2")
    _one_line_error(capsys, dcv + ["--dec-opt", "lrr=0.1"], "--dec-opt", "did you mean 'lr'?")
    _one_line_error(capsys, dcv + ["--dec-opt", "lr=fast"], "--dec-opt", "lr=fast", "a number")
    _one_line_error(capsys, e2e + ["--gen-opt", "hiden=3"], "--gen-opt", "generator 'mlp'")
    _one_line_error(capsys, dcv + ["--budget-opt", "epoch=1"], "--budget-opt", "did you mean 'epochs'?")
    _one_line_error(capsys, dcv + ["--budget-opt", "epochs=-1"], "--budget-opt", "epochs=-1", "> 0")
    synth = ["run", "--dataset", "synthetic", "--protocol", "decoder-cv", "--dec", "pca", "--budget", "smoke",
             "--out", str(out), "--leaderboard", str(tmp_path / "lb.csv")]
    _one_line_error(capsys, synth + ["--dataset-opt", "identites=8"], "--dataset-opt", "did you mean 'identities'?")
    assert not out.exists() and not (tmp_path / "lb.csv").exists()


@pytest.fixture
def metric_registry(test_registry):
    """The test registry plus a metric registered by a plugin (fc4dfs_test_metric)."""
    import fc4dfs_test_components
    import fc4dfs_test_metric

    from fc4dfs.plugins import manager

    reg = manager.discover(strict=True, extra=[(fc4dfs_test_components, "fc4dfs-tests"),
                                               (fc4dfs_test_metric, "fc4dfs-test-metric")])
    manager.set_registry(reg)
    yield reg
    manager.set_registry(test_registry)


@pytest.mark.e2e
def test_a_plugin_metric_appears_in_every_protocol_scoring_meshes(metric_registry, tmp_path: Path):
    runs = {}
    for protocol, gen, opts in (("decoder-cv", None, {"only_folds": [0, 2]}),
                                ("length-ablation", "mlp", {"lengths": [9]}), ("e2e", "mlp", {})):
        cfg = RunConfig(protocol=protocol, dataset="tiny", generator=gen, decoder="sgd_linear", budget="smoke",
                        protocol_options=opts)
        runs[protocol] = execute(cfg, out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False,
                                 reg=metric_registry, render=False)
    for protocol, res in runs.items():
        rows = [ResultRow.from_dict(r) for r in res.record["rows"]]
        per_item = json.loads((res.run_dir / "per_item.json").read_text())
        for row in rows:
            if row.reference:  # the ground-truth row scores only reference metrics
                assert "e_mesh_max" not in row.metrics
                continue
            assert row.metrics["e_mesh_max"] >= row.metrics["e_mesh"] > 0, (protocol, row.metrics)
            assert len(per_item[row.key]["e_mesh_max"]) == row.n_items
    folds = [ResultRow.from_dict(r) for r in runs["decoder-cv"].record["rows"]]
    assert [r.fold for r in folds] == [0, 2, None]
    assert folds[-1].metrics["e_mesh_max"] == max(r.metrics["e_mesh_max"] for r in folds[:-1])
    header, _ = lb.read_rows(tmp_path / "lb.csv")
    assert "e_mesh_max" in header


@pytest.mark.e2e
def test_pooled_row_is_the_mean_over_every_vertex_of_every_fold(test_registry, tmp_path: Path):
    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke",
                    protocol_options={"only_folds": [1, 3]})
    res = execute(cfg, out_dir=tmp_path, leaderboard=None, progress=False, reg=test_registry, render=False)
    rows = [ResultRow.from_dict(r) for r in res.record["rows"]]
    folds, pooled = rows[:-1], rows[-1]
    per_item = json.loads((res.run_dir / "per_item.json").read_text())
    items = per_item["pooled"]["e_mesh"]
    # each test item once, and the fold rows' items together are the pooled row's
    assert len(items) == pooled.n_items == sum(r.n_items for r in folds)
    assert sorted(k for r in folds for k, _ in per_item[r.key]["e_mesh"]) == sorted(k for k, _ in items)
    # every item has the same vertex count, so the mean over every vertex of every frame weighs each item's
    # mean by its frame count (the key's last field)
    frames = np.array([int(k.rsplit("|", 1)[1]) for k, _ in items])
    values = np.array([v for _, v in items])
    assert pooled.metrics["e_mesh"] == pytest.approx(float((values * frames).sum() / frames.sum()), rel=1e-9)


def _row(run: str, **kw):
    base = {"run_id": run, "status": "ok", "protocol": "e2e", "setting": "e2e", "dataset": "d", "dataset_hash": "h",
            "generator": "mlp", "generator_version": "1", "decoder": "pca", "decoder_version": "1",
            "budget": "smoke", "seed": 0}
    return {**base, **kw}


def test_rows_of_different_overrides_are_never_averaged_together(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row("plain", e_mesh=1.0), _row("plain-s1", seed=1, e_mesh=1.2),
                          _row("short", budget_overrides='{"epochs": 1}', e_mesh=5.0),
                          _row("len", protocol_options='{"length": 20}', e_mesh=3.0)])
    tables = lb.rank(lb.load_frame(path), {"e_mesh": "lower"}, {"e2e": ("e_mesh", "lower")})
    # different overrides or protocol options: never averaged, and never ranked in one table either
    assert sorted(t.budget for t in tables) == ["smoke", "smoke epochs=1", "smoke protocol length=20"]
    assert all(list(t.table["rank"]) == [1] for t in tables)
    plain = next(t for t in tables if t.budget == "smoke")
    assert list(plain.table["runs"]) == [2] and list(plain.table["e_mesh"]) == pytest.approx([1.1])
    # ± over two seeds is the 95 % t-interval: t(1 dof) * sample std / sqrt(2)
    half = 12.706 * float(np.std([1.0, 1.2], ddof=1)) / np.sqrt(2)
    assert plain.pm == "95 % CI over seeds" and f"1.1 ± {half:.3g}" in lb.format_table(plain)
    single = next(t for t in tables if t.budget == "smoke epochs=1")
    assert single.pm == "" and "±" not in lb.format_table(single)  # no "± 0" for a single run


def test_rows_of_an_older_protocol_version_are_not_ranked_with_newer_ones(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row("old", e_mesh=0.5), _row("v2", protocol_version="2", e_mesh=1.0),
                          _row("v3", protocol_version="3", generator="lstm", e_mesh=2.0)])
    (table,) = lb.rank(lb.load_frame(path), {"e_mesh": "lower"}, {"e2e": ("e_mesh", "lower")})
    assert list(table.table["generator"]) == ["lstm"] and "ranking only version 3" in table.notes[0]


@pytest.mark.e2e
def test_run_rows_carry_their_overrides_and_options(test_registry, tmp_path: Path):
    for overrides in ({}, {"epochs": 1}):
        cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke",
                        budget_overrides=overrides, protocol_options={"only_folds": [0]},
                        decoder_options={"lr": 0.05})
        execute(cfg, out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False, reg=test_registry,
                render=False)
    _, rows = lb.read_rows(tmp_path / "lb.csv")
    assert {r["budget_overrides"] for r in rows} == {"", '{"epochs": 1}'}
    assert {r["protocol_options"] for r in rows} == {'{"only_folds": [0]}'}
    assert {r["decoder_options"] for r in rows} == {'{"lr": 0.05}'}
    tables = lb.rank(lb.load_frame(tmp_path / "lb.csv"), {"e_mesh": "lower"}, {"decoder-cv": ("e_mesh", "lower")})
    assert [list(t.table["setting"]) for t in tables] == [["pooled"], ["pooled"]]  # one table per budget
    assert "2 per-fold row(s) not listed" in tables[0].notes[0]  # fold0 of each budget
    with_folds = lb.rank(lb.load_frame(tmp_path / "lb.csv"), {"e_mesh": "lower"},
                         {"decoder-cv": ("e_mesh", "lower")}, folds=True)
    assert [sorted(t.table["setting"]) for t in with_folds] == [["fold0", "pooled"]] * 2


def test_rebuild_from_a_missing_or_empty_runs_folder_is_an_error(tmp_path: Path, capsys):
    lb_path = tmp_path / "lb.csv"
    _one_line_error(capsys, ["leaderboard", "rebuild", "--runs", str(tmp_path / "MISSING"), "--leaderboard",
                             str(lb_path)], "MISSING", "no such directory")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, ["leaderboard", "rebuild", "--runs", str(tmp_path / "empty"), "--leaderboard",
                             str(lb_path)], "no finished run")
    assert not lb_path.exists()


def test_result_rows_round_trip_and_read_old_records():
    row = ResultRow("fold2", 5, {"e_mesh": 1.0, "e_mesh_std": 0.5}, fold=2, train_seconds=1.5)
    assert ResultRow.from_dict(row.to_dict()) == ResultRow("fold2", 5, row.metrics, fold=2, train_seconds=1.5)
    old_pooled = ResultRow.from_dict({"setting": "pooled", "fold": "all", "n_items": 9, "metrics": {}})
    old_gt = ResultRow.from_dict({"setting": "e2e", "generator": "gt", "decoder": "gt", "n_items": 3, "metrics": {}})
    old_len = ResultRow.from_dict({"setting": "length=25", "n_items": 3, "metrics": {}})
    assert old_pooled.pooled and old_gt.reference and not old_gt.pooled and old_gt.key == "gt"
    assert old_len.length == 25


def test_a_protocol_returning_untyped_rows_fails_the_run_with_its_reason(test_registry, tmp_path: Path, monkeypatch):
    from fc4dfs.benchmark.protocols.decoder_cv import DecoderCV

    monkeypatch.setattr(DecoderCV, "run", lambda self, ctx: [{"setting": "fold0", "metrics": {}}])
    cfg = RunConfig(protocol="decoder-cv", dataset="tiny", decoder="sgd_linear", budget="smoke")
    with pytest.raises(TypeError, match="must return .*ResultRow"):
        execute(cfg, out_dir=tmp_path, leaderboard=None, progress=False, reg=test_registry, render=False)
    assert json.loads((tmp_path / cfg.run_id / "record.failed.json").read_text())["error"]["type"] == "TypeError"
