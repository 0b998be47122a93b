"""Reconstruction errors: ``e_lm`` (landmarks) and ``e_mesh`` (vertices), in millimetres.

FC-4DFS Table 1 calls them MSE but reports the mean Euclidean distance per landmark / vertex in
mm; that is what is computed here. The value is the mean over every point of every frame of
every item (pooled, as FC-4DFS Tables 1-4 report it: longer sequences weigh more) and ``std``
the standard deviation over those same per-point distances (the ± of FC-4DFS Tables 2-4).
``per_item`` is each item's mean over its own frames and points; the mean over items (every
sequence weighing the same) is kept as ``details["item_mean"]`` / ``details["item_std"]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence as Seq

import numpy as np

from fc4dfs.plugins.contracts import EvalContext, EvalItem, Metric, MetricValue
from fc4dfs.plugins.errors import ComponentError

#: points of normalised time [0, 1] at which the per-frame error curve is reported
CURVE_POINTS = 21


def per_frame_errors(pred: np.ndarray, gt: np.ndarray, where: str) -> np.ndarray:
    """``[T, N]`` Euclidean distances (mm) between two ``[T, N, 3]`` sequences of equal shape."""
    pred = np.asarray(pred, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float32)
    if pred.shape != gt.shape:
        raise ComponentError(f"{where}: prediction has shape {pred.shape} but ground truth {gt.shape}; "
                             "they must have the same length and point count")
    if pred.ndim != 3 or pred.shape[-1] != 3:
        raise ComponentError(f"{where}: expected [T, N, 3] arrays, got {pred.shape}")
    return np.linalg.norm(pred - gt, axis=-1)


def _curve(frame_means: list[np.ndarray], points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """Per-frame errors of items of any length, resampled onto normalised time and averaged."""
    grid = np.linspace(0.0, 1.0, points)
    rows = np.stack([np.interp(grid, np.linspace(0.0, 1.0, len(f)) if len(f) > 1 else np.zeros(1), f)
                     for f in frame_means])
    return {"t": grid.round(4).tolist(), "mean": rows.mean(0).tolist(), "std": rows.std(0).tolist()}


def _per_label(labels: Seq[str], per_item: np.ndarray) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for label, v in zip(labels, per_item):
        out.setdefault(label, []).append(float(v))
    return {k: float(np.mean(v)) for k, v in sorted(out.items())}


@dataclass(frozen=True)
class ItemErrors:
    """What an item contributes to an error metric: its label, its mean error (mm), its per-frame mean
    errors ``[T]``, and the sum, sum of squares and count of its per-point distances."""

    label: str
    mean: float
    frame_means: np.ndarray
    total: float
    total_sq: float
    count: int


class _EuclideanError(Metric):
    unit: ClassVar[str] = "mm"
    direction: ClassVar[str] = "lower"
    pred_attr: ClassVar[str] = ""
    gt_attr: ClassVar[str] = ""

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[ItemErrors]:
        out = []
        for i, it in enumerate(items):
            pred, gt = getattr(it, self.pred_attr), getattr(it, self.gt_attr)
            where = f"item {i} ({it.identity}/{it.label})"
            if pred is None or gt is None:
                raise ComponentError(f"metric {self.name!r}: {where} lacks {self.pred_attr} or {self.gt_attr}")
            err = per_frame_errors(pred, gt, where).astype(np.float64)
            out.append(ItemErrors(it.label, err.mean(), err.mean(1), err.sum(), (err**2).sum(), err.size))
        return out

    def finalize(self, summaries: Seq[ItemErrors], ctx: EvalContext) -> MetricValue:
        if not summaries:
            raise ComponentError(f"metric {self.name!r} got no items to score")
        per_item = np.array([s.mean for s in summaries], dtype=np.float64)
        total, total_sq, count = 0.0, 0.0, 0
        for s in summaries:
            total += s.total
            total_sq += s.total_sq
            count += s.count
        details: dict[str, Any] = {
            "per_label": _per_label([s.label for s in summaries], per_item),
            "curve": _curve([s.frame_means for s in summaries]),
        }
        return _pooled_value(count, total, total_sq, per_item, details)

    def pool(self, parts: Seq[MetricValue]) -> MetricValue:
        """Pool disjoint item sets (e.g. CV folds) exactly, from each part's point count and sums."""
        sums = np.sum([[p.details["points"], p.details["sum"], p.details["sum_sq"]] for p in parts], axis=0)
        per_item = np.concatenate([np.asarray(p.per_item, dtype=np.float64) for p in parts])
        return _pooled_value(int(sums[0]), float(sums[1]), float(sums[2]), per_item, {})


def _pooled_value(count: int, total: float, total_sq: float, per_item: np.ndarray,
                  details: dict[str, Any]) -> MetricValue:
    """Mean and std over ``count`` per-point distances from their sum and sum of squares."""
    mean = total / count
    std = float(np.sqrt(max(0.0, total_sq / count - mean**2)))
    details = {**details, "item_mean": float(per_item.mean()), "item_std": float(per_item.std()),
               "points": int(count), "sum": float(total), "sum_sq": float(total_sq)}
    return MetricValue(float(mean), std, per_item, details)


class LandmarkError(_EuclideanError):
    """E_lm: mean per-landmark Euclidean distance between generated and ground-truth landmarks."""

    name: ClassVar[str] = "e_lm"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Mean per-landmark Euclidean error of generated landmark sequences"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_landmarks"})
    pred_attr: ClassVar[str] = "pred_landmarks"
    gt_attr: ClassVar[str] = "gt_landmarks"


class MeshError(_EuclideanError):
    """E_mesh: mean per-vertex Euclidean distance between decoded and ground-truth meshes.

    ``details["curve"]`` is the per-frame error over normalised time (Potamias Fig. 5).
    """

    name: ClassVar[str] = "e_mesh"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Mean per-vertex Euclidean error of decoded mesh sequences"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_mesh"})
    pred_attr: ClassVar[str] = "pred_mesh"
    gt_attr: ClassVar[str] = "gt_mesh"
