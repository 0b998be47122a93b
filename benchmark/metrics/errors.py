"""Reconstruction errors: ``e_lm`` (landmarks) and ``e_mesh`` (vertices), in millimetres.

FC-4DFS Table 1 calls them MSE but reports the mean Euclidean distance per landmark / vertex in
mm; that is what is computed here. Each item's error is the mean over all its frames and points;
the metric's value is the mean over items (every test sequence weighs the same) and ``std`` the
standard deviation across items.
"""
from __future__ import annotations

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


def _per_label(items: Seq[EvalItem], per_item: np.ndarray) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for it, v in zip(items, per_item):
        out.setdefault(it.label, []).append(float(v))
    return {k: float(np.mean(v)) for k, v in sorted(out.items())}


class _EuclideanError(Metric):
    unit: ClassVar[str] = "mm"
    direction: ClassVar[str] = "lower"
    pred_attr: ClassVar[str] = ""
    gt_attr: ClassVar[str] = ""

    def compute(self, items: Seq[EvalItem], ctx: EvalContext) -> MetricValue:
        if not items:
            raise ComponentError(f"metric {self.name!r} got no items to score")
        per_item = np.empty(len(items), dtype=np.float64)
        frame_means: list[np.ndarray] = []
        total, total_sq, count = 0.0, 0.0, 0
        for i, it in enumerate(items):
            pred, gt = getattr(it, self.pred_attr), getattr(it, self.gt_attr)
            where = f"item {i} ({it.identity}/{it.label})"
            if pred is None or gt is None:
                raise ComponentError(f"metric {self.name!r}: {where} lacks {self.pred_attr} or {self.gt_attr}")
            err = per_frame_errors(pred, gt, where).astype(np.float64)
            per_item[i] = err.mean()
            frame_means.append(err.mean(1))
            total += err.sum()
            total_sq += (err**2).sum()
            count += err.size
        pooled_mean = total / count
        details: dict[str, Any] = {
            "per_label": _per_label(items, per_item),
            "pooled_mean": float(pooled_mean),
            "pooled_std": float(np.sqrt(max(0.0, total_sq / count - pooled_mean**2))),
            "curve": _curve(frame_means),
        }
        return MetricValue(float(per_item.mean()), float(per_item.std()), per_item, details)


class LandmarkError(_EuclideanError):
    """E_lm: mean per-landmark Euclidean distance between generated and ground-truth landmarks."""

    name: ClassVar[str] = "e_lm"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Mean per-landmark Euclidean error of generated landmark sequences"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_landmarks"})
    pred_attr: ClassVar[str] = "pred_landmarks"
    gt_attr: ClassVar[str] = "gt_landmarks"


class MeshError(_EuclideanError):
    """E_mesh: mean per-vertex Euclidean distance between decoded and ground-truth meshes.

    ``details["curve"]`` is the per-frame error over normalised time (Potamias Fig. 5);
    ``details["pooled_std"]`` the standard deviation over every vertex of every frame (the ± of
    FC-4DFS Table 2).
    """

    name: ClassVar[str] = "e_mesh"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Mean per-vertex Euclidean error of decoded mesh sequences"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_mesh"})
    pred_attr: ClassVar[str] = "pred_mesh"
    gt_attr: ClassVar[str] = "gt_mesh"
