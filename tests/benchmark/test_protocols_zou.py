"""One end-to-end test per protocol of Zou et al.'s tables (text-control, filling, geometry-adaptive),
with ``ddpm`` at the smoke budget on the tiny dataset, plus the filling masks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.protocols.filling import MODES, filling_mask, mean_imputation
from fc4dfs.benchmark.runner import execute

#: sampling settings that keep smoke runs to seconds (the registry-wide conformance options)
FAST = {"diffusion_steps": 200, "sampling_steps": 10, "harmonize_iters": 2, "eta": 0.0}


def _run(reg, tmp_path: Path, protocol: str, **options):
    cfg = RunConfig(protocol=protocol, dataset="tiny", generator="ddpm", budget="smoke",
                    generator_options=FAST, protocol_options=options)
    return execute(cfg, out_dir=tmp_path, leaderboard=tmp_path / "lb.csv", progress=False, reg=reg, render=False)


@pytest.mark.parametrize("length", [3, 9, 40, 41])
@pytest.mark.parametrize("hidden", [0.25, 0.5, 0.75])
def test_filling_masks_hide_the_stated_part(length, hidden):
    h = min(max(round(hidden * length), 1), length - 2)
    masks = {m: filling_mask(m, length, hidden) for m in MODES}
    for m, known in masks.items():
        assert known.dtype == bool and known.shape == (length,)
        assert int((~known).sum()) == h, (m, int((~known).sum()), h)
    assert not masks["ffe"][length - h:].any() and masks["ffe"][:length - h].all()
    assert not masks["ffb"][:h].any() and masks["ffb"][h:].all()
    ffm = masks["ffm"]
    hidden_idx = np.flatnonzero(~ffm)
    assert ffm[0] and ffm[-1] and np.array_equal(hidden_idx, np.arange(hidden_idx[0], hidden_idx[0] + h))
    assert abs(int(ffm[:hidden_idx[0]].sum()) - int(ffm[hidden_idx[-1] + 1:].sum())) <= 1


def test_mean_imputation_keeps_known_frames():
    x = np.random.default_rng(0).normal(size=(10, 68, 3)).astype(np.float32)
    known = filling_mask("ffm", 10, 0.5)
    out = mean_imputation(x, known)
    assert np.array_equal(out[known], x[known])
    np.testing.assert_allclose(out[~known], np.broadcast_to(x[known].mean(0), out[~known].shape), rtol=1e-6)


@pytest.mark.e2e
def test_filling_protocol_rows_per_case_and_baseline(test_registry, tmp_path: Path):
    res = _run(test_registry, tmp_path, "filling", modes=["ffe", "ffm"], hidden=0.4)
    rows = res.record["rows"]
    main = [r for r in rows if not r["reference"]]
    flat = [r for r in res.record["rows_flat"] if r["generator"] != "gt"]
    assert [(r["setting"], r["generator"]) for r in flat] == [
        ("ffe", "ddpm"), ("ffe", "mean-imputation"), ("ffm", "ddpm"), ("ffm", "mean-imputation")]
    for r in main:
        assert {"ca", "fid", "e_lm_hidden"} <= set(r["metrics"]), r["metrics"].keys()
        assert all(np.isfinite(v) for v in r["metrics"].values())
        assert r["details"]["hidden_fraction"] == 0.4
    assert rows[-1]["reference"] and "ca" in rows[-1]["metrics"]
    per_item = json.loads((res.run_dir / "per_item.json").read_text())
    assert len(per_item["ffe"]["e_lm_hidden"]) == main[0]["n_items"] > 0


@pytest.mark.e2e
def test_geometry_adaptive_protocol_scores_landmarks_and_a_gt_row(test_registry, tmp_path: Path):
    res = _run(test_registry, tmp_path, "geometry-adaptive", length=12)
    main, gt = res.record["rows"]
    assert main["setting"] == "geometry-adaptive" and main["length"] == 12
    assert {"ca", "fid", "e_lm"} <= set(main["metrics"]) and "e_mesh" not in main["metrics"]
    assert gt["reference"] and "ca" in gt["metrics"]


@pytest.mark.e2e
def test_text_control_protocol_rows_beside_label_control(test_registry, tmp_path: Path):
    res = _run(test_registry, tmp_path, "text-control")
    rows = res.record["rows"]
    assert [r["setting"] for r in rows if not r["reference"]] == ["raw-text", "enriched-text", "label"]
    for r in rows[:3]:
        assert {"ca", "fid"} <= set(r["metrics"]) and all(np.isfinite(v) for v in r["metrics"].values())
    assert any(t.startswith("from the neutral face to ") for t in rows[1]["details"]["texts"])
    assert rows[-1]["reference"]


def test_generate_batched_makes_one_call_per_length_and_fps_group():
    from types import SimpleNamespace

    from fc4dfs.benchmark.protocols.common import generate_batched

    calls = []

    def call(idx, length, fps, seed):
        calls.append((list(idx), length, fps, seed))
        return np.stack([np.full((length, 2, 3), i, dtype=np.float32) for i in idx])

    ctx = SimpleNamespace(seed=2, iterate=lambda xs, desc: xs)
    keys = [(10, 30.0), (12, 30.0), (10, 30.0), (10, None)]
    out = generate_batched(ctx, keys, "t", call)
    # groups in order of first appearance; a group is seeded as a call for its first item would be
    assert calls == [([0, 2], 10, 30.0, 2 * 100003), ([1], 12, 30.0, 2 * 100003 + 1), ([3], 10, None, 2 * 100003 + 3)]
    assert [o.shape[0] for o in out] == [10, 12, 10, 10] and [int(o[0, 0, 0]) for o in out] == [0, 1, 2, 3]


@pytest.mark.e2e
def test_text_control_label_row_is_the_geometry_adaptive_computation(test_registry, tmp_path: Path):
    """Both protocols generate label control through one function: at one seed their items agree exactly, so
    reproduce takes Table 2's label row from Table 4's run."""
    ga = _run(test_registry, tmp_path, "geometry-adaptive", length=12)
    tc = _run(test_registry, tmp_path, "text-control", length=12, tasks=["raw"])
    a = json.loads((ga.run_dir / "per_item.json").read_text())["geometry-adaptive"]
    b = json.loads((tc.run_dir / "per_item.json").read_text())["label"]
    assert len(a["e_lm"]) > 1 and a["e_lm"] == b["e_lm"] and a["ca"] == b["ca"]
    assert all(r["length"] == 12 for r in tc.record["rows"])
