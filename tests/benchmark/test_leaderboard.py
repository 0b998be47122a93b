"""Leaderboard CSV: concurrent appends, malformed files, formula neutralisation, ranking by version."""
from __future__ import annotations

import csv
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark import leaderboard as lb


def _row(i: int, **kw) -> dict:
    r = {"run_id": f"run{i}", "protocol": "e2e", "dataset": "tiny", "dataset_hash": "h1", "status": "ok",
         "setting": "e2e", "generator": "g", "generator_version": "1", "decoder": "d", "decoder_version": "1",
         "seed": i, "e_mesh": 1.0 + i}
    r.update(kw)
    return r


def _worker(path: str, start: int, n: int) -> None:
    for i in range(start, start + n):
        lb.append_rows(path, [_row(i, e_mesh=float(i))])


def test_concurrent_appends_lose_no_row(tmp_path: Path):
    path = tmp_path / "lb.csv"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(path), k * 100, 15)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    header, rows = lb.read_rows(path)
    assert len(rows) == 60
    assert {r["run_id"] for r in rows} == {f"run{k * 100 + i}" for k in range(4) for i in range(15)}


def test_reappending_the_same_rows_is_idempotent(tmp_path: Path):
    path = tmp_path / "lb.csv"
    assert lb.append_rows(path, [_row(1), _row(2)]) == 2
    assert lb.append_rows(path, [_row(1), _row(2)]) == 0
    assert len(lb.read_rows(path)[1]) == 2


def test_new_metric_columns_extend_the_header(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1)])
    lb.append_rows(path, [_row(2, fid=3.5)])
    header, rows = lb.read_rows(path)
    assert "fid" in header and rows[0]["fid"] == "" and rows[1]["fid"] == "3.5"


@pytest.mark.parametrize("content", [
    "not,a,leaderboard\n1,2,3\n",
    "row_id,run_id,protocol,dataset,status\nx,y,z\n",
    "row_id,run_id,protocol,dataset,status,status\n",
])
def test_malformed_file_is_reported_and_never_overwritten(tmp_path: Path, content: str):
    path = tmp_path / "lb.csv"
    path.write_text(content)
    with pytest.raises(lb.LeaderboardError, match=str(path)):
        lb.append_rows(path, [_row(1)])
    assert path.read_text() == content


def test_formula_values_are_neutralised(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1, generator="=HYPERLINK(\"http://x\")", decoder="@SUM(A1)", setting="+1+2",
                           error="-cmd|calc", e_lm=-1.5)])
    with open(path, newline="") as f:
        row = list(csv.DictReader(f))[0]
    assert row["generator"].startswith("'=") and row["decoder"].startswith("'@")
    assert row["setting"].startswith("'+") and row["error"].startswith("'-")
    assert row["e_lm"] == "-1.5"
    assert lb.neutralise("-2.5") == "-2.5" and lb.neutralise("safe") == "safe"


def test_rank_uses_direction_and_refuses_mixed_versions(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [
        _row(1, generator="a", ca=90.0, e_mesh=2.0), _row(2, generator="a", ca=80.0, e_mesh=2.0, seed=5),
        _row(3, generator="b", ca=70.0, e_mesh=1.0),
        _row(4, generator="b", generator_version="2", ca=95.0, e_mesh=0.5),
    ])
    df = lb.load_frame(path)
    (by_ca,) = lb.rank(df, {"ca": "higher", "e_mesh": "lower"}, {"e2e": ("ca", "higher")})
    t = by_ca.table
    assert list(t["generator"]) == ["b", "a"]  # b v2 (95) beats a (85 mean); b v1 is not ranked
    assert float(t[t.generator == "a"]["ca"].iloc[0]) == pytest.approx(85.0)
    # ± is the 95 % CI of the mean over the two seeds: t(1 dof) * sample std / sqrt(2)
    assert float(t[t.generator == "a"]["ca±"].iloc[0]) == pytest.approx(12.706 * np.std([90.0, 80.0], ddof=1) / np.sqrt(2))
    assert not t["overlaps_first"].any()  # b has a single run, hence no CI to overlap
    assert "none for a single run" in " ".join(by_ca.legend())
    (b_line,) = [line for line in lb.format_table(by_ca).splitlines() if "| b " in line]
    assert "±" not in b_line, b_line  # one run: its cells are plain means

    assert any("versions 1, 2" in n for n in by_ca.notes)
    (by_err,) = lb.rank(df, {"ca": "higher", "e_mesh": "lower"}, {"e2e": "e_mesh"})
    assert list(by_err.table["generator"]) == ["b", "a"]
    assert "±" in lb.format_table(by_err)


def test_separate_tables_per_dataset_version(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1), _row(2, dataset_hash="h2")])
    tables = lb.rank(lb.load_frame(path), {"e_mesh": "lower"})
    assert sorted(t.dataset_hash for t in tables) == ["h1", "h2"]


def test_rows_scored_by_different_evaluators_are_never_ranked_together(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1, generator="a", evaluator="ev1", ca=90.0),
                          _row(2, generator="b", evaluator="ev2", ca=95.0),
                          _row(3, generator="c", evaluator="ev1", ca=50.0)])
    tables = lb.rank(lb.load_frame(path), {"ca": "higher"}, {"e2e": ("ca", "higher")})
    assert {t.evaluator: list(t.table["generator"]) for t in tables} == {"ev1": ["a", "c"], "ev2": ["b"]}
    assert all("never ranked together" in " ".join(t.notes) for t in tables)
    assert all(f"evaluator {t.evaluator}" in " ".join(t.legend()) for t in tables)


def test_ci_over_seeds_marks_overlapping_rows(tmp_path: Path):
    path = tmp_path / "lb.csv"
    # a and b: seeds spread 1.0 around means 10 and 10.5 (overlap); c: far below both
    rows = [_row(10 + s, generator="a", seed=s, e_mesh=10.0 + d) for s, d in enumerate((-1.0, 0.0, 1.0))]
    rows += [_row(20 + s, generator="b", seed=s, e_mesh=10.5 + d) for s, d in enumerate((-1.0, 0.0, 1.0))]
    rows += [_row(30 + s, generator="c", seed=s, e_mesh=2.0 + d) for s, d in enumerate((-0.01, 0.0, 0.01))]
    lb.append_rows(path, rows)
    (table,) = lb.rank(lb.load_frame(path), {"e_mesh": "lower"}, {"e2e": ("e_mesh", "lower")})
    t = table.table.set_index("generator")
    assert list(table.table["generator"]) == ["c", "a", "b"]
    assert not t.loc["a", "overlaps_first"] and not t.loc["b", "overlaps_first"]  # c's CI is far from both
    assert table.pm == "95 % CI over seeds"
    shown = lb.format_table(table)
    assert lb.OVERLAP_MARK not in shown
    lb.append_rows(path, [_row(40 + s, generator="d", seed=s, e_mesh=2.5 + d) for s, d in enumerate((-1.0, 0.0, 1.0))])
    (table,) = lb.rank(lb.load_frame(path), {"e_mesh": "lower"}, {"e2e": ("e_mesh", "lower")})
    t = table.table.set_index("generator")
    assert t.loc["d", "rank"] == 2 and t.loc["d", "overlaps_first"]  # 0.5 worse than c, CI half-width ~2.5
    assert f"2{lb.OVERLAP_MARK}" in lb.format_table(table)


def test_failed_rows_are_listed_apart_from_the_ranking(tmp_path: Path, monkeypatch):
    from fc4dfs.benchmark.publishing import markdown

    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1, generator="a"), _row(2, generator="boom", status="failed", setting="failed@t",
                                                    error="RuntimeError: out of memory", e_mesh="")])
    text = markdown(path)
    ranked, failed = text.split("### Failed runs")
    assert "boom" not in ranked and " a " in ranked
    assert "boom" in failed and "RuntimeError: out of memory" in failed


def test_single_runs_show_no_spread_and_the_legend_says_why(tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1, generator="a", e_mesh=1.0), _row(2, generator="b", e_mesh=2.0)])
    (table,) = lb.rank(lb.load_frame(path), {"e_mesh": "lower"}, {"e2e": ("e_mesh", "lower")})
    shown = lb.format_table(table)
    assert "±" not in shown and table.pm == "", shown
    assert any("one run per configuration: no ±" in line for line in table.legend())
    assert lb.mean_pm(1.0, float("nan")) == "1" and lb.mean_pm(1.0, 0.5) == "1 ± 0.5"


def test_a_configuration_and_seed_scored_twice_counts_once(tmp_path: Path):
    """Rows repeating a configuration and seed (the same run scored again) are one run: the newest."""
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [_row(1, run_id="old", seed=0, e_mesh=5.0, utc_time="2026-01-01T00:00:00Z"),
                          _row(2, run_id="new", seed=0, e_mesh=3.0, utc_time="2026-01-02T00:00:00Z"),
                          _row(3, run_id="other", seed=1, e_mesh=4.0, utc_time="2026-01-01T12:00:00Z")])
    (table,) = lb.rank(lb.load_frame(path), {"e_mesh": "lower"}, {"e2e": ("e_mesh", "lower")})
    row = table.table.iloc[0]
    assert row["runs"] == 2 and row["e_mesh"] == pytest.approx(3.5)  # seeds 0 (newest: 3.0) and 1 (4.0)
    assert any("only the newest counts" in n for n in table.notes)


def test_rows_in_memory_rank_as_the_file_would(tmp_path: Path):
    """`run --seeds` prints its runs' mean ± CI from the records' rows, ranked exactly as `leaderboard show`."""
    from fc4dfs.benchmark.publishing import frame_markdown, markdown

    rows = [_row(s, seed=s, e_mesh=1.0 + 0.1 * s, generator_options='{"k": 1}', ca=float("nan")) for s in range(3)]
    path = tmp_path / "lb.csv"
    lb.append_rows(path, rows)
    shown = frame_markdown(lb.frame_of(rows), source=path)
    assert shown == markdown(path)
    assert "± is the 95 % CI over seeds" in shown and "1.1 ± 0.248" in shown, shown
