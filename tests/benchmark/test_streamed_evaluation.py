"""The e2e protocol scores its test items in chunks (``common.EVAL_CHUNK``) and drops each chunk's meshes:
the scores equal scoring every item at once, and the items alive while scoring do not grow with
the number of test sequences."""
from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.protocols import common
from fc4dfs.benchmark.runner import execute
from fc4dfs.plugins.contracts import EvalItem

pytestmark = pytest.mark.e2e


@pytest.fixture
def reg(test_registry):
    pytest.importorskip("fc4dfs_nn_baseline", reason="example plugin not installed")
    return test_registry


def _run(reg, out: Path, chunk: int, monkeypatch) -> tuple[list[dict], dict]:
    """The run's rows and its per-item values (``per_item.json``)."""
    monkeypatch.setattr(common, "EVAL_CHUNK", chunk)
    cfg = RunConfig(protocol="e2e", dataset="tiny", generator="nn_retrieval", decoder="sgd_linear", budget="smoke")
    res = execute(cfg, out_dir=out, leaderboard=None, progress=False, reg=reg, render=False)
    return res.record["rows"], json.loads((res.run_dir / "per_item.json").read_text())


def _assert_close(a_rows: list[dict], a_items: dict, b_rows: list[dict], b_items: dict, what: str) -> None:
    """Equal rows and per-item values, to 1e-6 of each value's own scale (a classifier's features may
    round differently in another batch; every other metric is summed in the same order)."""
    assert [r["setting"] for r in b_rows] == [r["setting"] for r in a_rows] and b_items.keys() == a_items.keys()
    for a, b in zip(a_rows, b_rows):
        assert set(b["metrics"]) == set(a["metrics"]), what
        for name, va in a["metrics"].items():
            limit = 1e-6 * max(1.0, abs(va))
            assert abs(b["metrics"][name] - va) <= limit, f"{what}, {name}: {b['metrics'][name]!r} vs {va!r}"
    for key, metrics in a_items.items():
        for name, pairs in metrics.items():
            assert [k for k, _ in b_items[key][name]] == [k for k, _ in pairs]
            got = np.array([v for _, v in b_items[key][name]])
            want = np.array([v for _, v in pairs])
            limit = 1e-6 * max(1.0, float(np.abs(want).max()))
            assert np.abs(got - want).max() <= limit, f"{what}, {name}: {np.abs(got - want).max()} > {limit}"


def test_streamed_scores_equal_scoring_all_items_at_once(reg, tmp_path: Path, monkeypatch):
    at_once, at_once_items = _run(reg, tmp_path / "once", 10**6, monkeypatch)
    assert len(at_once) == 2  # the method's row and the ground truth's reference row
    assert {"e_lm", "e_mesh", "ca", "ca_mesh", "fid", "smoothness"} <= set(at_once[0]["metrics"])
    for chunk in (5, 4):  # 12 test items: chunks of 5, 5, 2 and of 4, 4, 4
        rows, items = _run(reg, tmp_path / f"chunk{chunk}", chunk, monkeypatch)
        _assert_close(at_once, at_once_items, rows, items, f"chunks of {chunk}")


def test_items_alive_while_scoring_stay_within_a_chunk(reg, tmp_path: Path, monkeypatch):
    chunk, examples = 2, 4  # RunContext.keep_example keeps the first 4 items for the run's pictures
    alive: list[int] = []
    real_add = common.Scorer.add

    def counting_add(self, items):
        gc.collect()
        # the generated meshes held anywhere (a reference item's pred_mesh is its ground truth: not counted)
        alive.append(len({id(o.pred_mesh) for o in gc.get_objects() if type(o) is EvalItem
                          and o.pred_mesh is not None and o.pred_mesh is not o.gt_mesh}))
        return real_add(self, items)

    monkeypatch.setattr(common.Scorer, "add", counting_add)
    rows, _ = _run(reg, tmp_path, chunk, monkeypatch)
    n_items = rows[0]["n_items"]
    limit = chunk + examples
    assert n_items > limit, f"the tiny dataset has {n_items} test items; the check needs more than {limit}"
    assert max(alive) <= limit, f"{max(alive)} generated mesh sequences alive while scoring (limit {limit}); {alive}"
