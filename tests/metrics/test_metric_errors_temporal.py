"""e_lm, e_mesh, diversity and smoothness on hand-made inputs with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from fc4dfs.benchmark.metrics.errors import LandmarkError, MeshError
from fc4dfs.benchmark.metrics.temporal import Diversity, Smoothness
from fc4dfs.plugins.contracts import EvalContext, EvalItem
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.plugins.testing import check_metric
from fc4dfs.datasets.fixtures import tiny_dataset


@pytest.fixture(scope="module")
def ctx() -> EvalContext:
    ds = tiny_dataset()
    return EvalContext(ds.topology, ds.labels)


def _item(gt: np.ndarray, pred: np.ndarray, label: str = "a", **kw) -> EvalItem:
    return EvalItem("id", label, 30.0, gt.astype(np.float32), pred_landmarks=pred.astype(np.float32), **kw)


def test_landmark_error_known_answer(ctx: EvalContext) -> None:
    gt = np.zeros((4, 5, 3))
    shifted = gt + np.array([3.0, 4.0, 0.0])  # 5 mm everywhere
    half = gt.copy()
    half[2:] += np.array([0.0, 0.0, 2.0])  # 2 mm on half the frames -> 1 mm mean
    # a longer item: lengths may differ between items
    long_gt = np.zeros((10, 5, 3))
    v = LandmarkError().compute([_item(gt, shifted), _item(gt, half, "b"), _item(long_gt, long_gt)], ctx)
    np.testing.assert_allclose(v.per_item, [5.0, 1.0, 0.0])
    # the value is pooled over every point of every frame: (20*5 + 10*2 + 50*0) / (20 + 20 + 50)
    every_point = np.concatenate([np.full(20, 5.0), np.full(10, 2.0), np.zeros(10), np.zeros(50)])
    assert v.value == pytest.approx(every_point.mean()) == pytest.approx(120 / 90)
    assert v.std == pytest.approx(every_point.std())
    # the mean over items (each sequence weighing the same) has its own name
    assert v.details["item_mean"] == pytest.approx(2.0)
    assert v.details["item_std"] == pytest.approx(np.std([5.0, 1.0, 0.0]))
    assert v.details["per_label"] == {"a": 2.5, "b": 1.0}


def test_pooling_parts_equals_scoring_their_union(ctx: EvalContext) -> None:
    rng = np.random.default_rng(0)
    items = [_item(np.zeros((t, 5, 3)), rng.normal(size=(t, 5, 3)), lab) for t, lab in ((4, "a"), (9, "b"), (6, "a"))]
    whole = LandmarkError().compute(items, ctx)
    pooled = LandmarkError().pool([LandmarkError().compute(items[:1], ctx), LandmarkError().compute(items[1:], ctx)])
    assert pooled.value == pytest.approx(whole.value) and pooled.std == pytest.approx(whole.std)
    np.testing.assert_allclose(pooled.per_item, whole.per_item)


def test_landmark_error_refuses_mismatched_lengths(ctx: EvalContext) -> None:
    with pytest.raises(ComponentError, match="item 0"):
        LandmarkError().compute([_item(np.zeros((4, 5, 3)), np.zeros((5, 5, 3)))], ctx)


def test_mesh_error_curve_over_normalised_time(ctx: EvalContext) -> None:
    def mesh_item(t: int) -> EvalItem:
        gt = np.zeros((t, 7, 3), np.float32)
        ramp = np.linspace(0.0, 4.0, t)  # error grows linearly from 0 to 4 mm over the sequence
        pred = gt + ramp[:, None, None] * np.array([1.0, 0, 0], np.float32)
        return EvalItem("id", "a", 30.0, np.zeros((t, 2, 3), np.float32), gt_mesh=gt, pred_mesh=pred)

    v = MeshError().compute([mesh_item(5), mesh_item(31)], ctx)
    assert v.value == pytest.approx(2.0)
    curve = v.details["curve"]
    assert curve["t"][0] == 0.0 and curve["t"][-1] == 1.0
    np.testing.assert_allclose(curve["mean"], np.linspace(0, 4, len(curve["t"])), atol=1e-6)
    np.testing.assert_allclose(curve["std"], 0.0, atol=1e-6)
    # both items ramp 0 -> 4 mm: pooled mean 2 (the 31-frame item weighs more, same mean), spread > 0
    assert v.std > 0


def test_diversity_known_answer(ctx: EvalContext) -> None:
    gt = np.zeros((3, 4, 3))
    samples = np.stack([gt, gt + [1.0, 0, 0], gt + [3.0, 0, 0]])  # pair distances 1, 3, 2 -> mean 2
    same = np.stack([gt, gt, gt])  # a deterministic generator
    v = Diversity().compute([_item(gt, gt, samples=samples), _item(gt, gt, samples=same)], ctx)
    np.testing.assert_allclose(v.per_item, [2.0, 0.0])
    assert v.value == pytest.approx(1.0)
    # a single sample is paired with pred_landmarks
    one = Diversity().compute([_item(gt, gt + [0, 2.0, 0], samples=gt[None])], ctx)
    assert one.value == pytest.approx(2.0)


def test_smoothness_known_answer(ctx: EvalContext) -> None:
    t = np.arange(6, dtype=np.float64)
    gt = np.zeros((6, 2, 3))
    gt[..., 0] = (t**2)[:, None]  # constant acceleration: second difference 2 mm every frame
    jitter = gt.copy()
    jitter[..., 1] = np.where(t % 2 == 0, 1.0, -1.0)[:, None]  # adds |±4| in y -> |(2, ±4)| = sqrt(20)
    v = Smoothness().compute([_item(gt, gt), _item(gt, jitter)], ctx)
    np.testing.assert_allclose(v.per_item, [0.0, np.log(np.sqrt(20.0) / 2.0)])
    assert v.details["gt_accel_mm"] == pytest.approx(2.0)
    assert v.details["ratio"] == pytest.approx((1.0 + np.sqrt(20.0) / 2.0) / 2.0)
    # "lower is better" holds both ways: a static or straight-line sequence (no acceleration) scores
    # worse than the jittery one, never 0
    line = np.zeros_like(gt)
    line[..., 0] = t[:, None]
    for still in (np.zeros_like(gt), line):
        s = Smoothness().compute([_item(gt, still)], ctx)
        assert s.value > v.per_item[1], (s.value, v.per_item[1])
    damped = gt.copy()
    damped[..., 0] = (t**2)[:, None] / 2.0  # half the real acceleration: as far from real as double
    doubled = gt.copy()
    doubled[..., 0] = 2.0 * (t**2)[:, None]
    half, twice = (Smoothness().compute([_item(gt, x)], ctx).value for x in (damped, doubled))
    assert half == pytest.approx(twice) == pytest.approx(np.log(2.0))
    with pytest.raises(ComponentError, match="need >= 3"):
        Smoothness().compute([_item(gt[:2], gt[:2])], ctx)


@pytest.mark.parametrize("cls", [LandmarkError, MeshError, Diversity, Smoothness])
def test_conformance(cls) -> None:
    check_metric(cls)
