"""Temporal metrics: ``diversity`` between samples and ``smoothness`` relative to real motion."""
from __future__ import annotations

from itertools import combinations
from typing import ClassVar, Sequence as Seq

import numpy as np

from fc4dfs.plugins.contracts import EvalContext, EvalItem, Metric, MetricValue
from fc4dfs.plugins.errors import ComponentError

#: denominator floor (mm/frame^2) so a static ground-truth sequence cannot divide by zero
_MIN_ACCEL = 1e-6


def mean_acceleration(seq: np.ndarray) -> float:
    """Mean norm (mm) of the second temporal difference ``x[t+1] - 2 x[t] + x[t-1]`` of ``[T, N, 3]``."""
    seq = np.asarray(seq, dtype=np.float64)
    acc = seq[2:] - 2.0 * seq[1:-1] + seq[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean())


class Diversity(Metric):
    """Mean pairwise distance (mm, mean per landmark and frame) between samples of one condition.

    Per item: the mean over all sample pairs; the value is the mean over items. It uses
    ``samples`` ``[S, T, L, 3]``, plus ``pred_landmarks`` when only one sample is given.
    Deterministic generators score 0.
    """

    name: ClassVar[str] = "diversity"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Mean pairwise distance between samples for the same condition"
    unit: ClassVar[str] = "mm"
    direction: ClassVar[str] = "higher"
    requires: ClassVar[frozenset[str]] = frozenset({"samples"})

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[tuple[float, int]]:
        """Per item: ``(mean pairwise distance, number of samples)``."""
        out = []
        for i, it in enumerate(items):
            where = f"item {i} ({it.identity}/{it.label})"
            if it.samples is None:
                raise ComponentError(f"metric {self.name!r}: {where} has no samples")
            samples = np.asarray(it.samples, dtype=np.float64)
            if samples.ndim != 4 or samples.shape[-1] != 3:
                raise ComponentError(f"metric {self.name!r}: {where} samples must be [S, T, L, 3], got {samples.shape}")
            given = len(samples)
            if len(samples) < 2 and it.pred_landmarks is not None:
                samples = np.concatenate([np.asarray(it.pred_landmarks, np.float64)[None], samples])
            if len(samples) < 2:
                raise ComponentError(f"metric {self.name!r}: {where} needs at least 2 samples, got {len(samples)}")
            out.append((float(np.mean([np.linalg.norm(samples[a] - samples[b], axis=-1).mean()
                                       for a, b in combinations(range(len(samples)), 2)])), given))
        return out

    def finalize(self, summaries: Seq[tuple[float, int]], ctx: EvalContext) -> MetricValue:
        if not summaries:
            raise ComponentError(f"metric {self.name!r} got no items to score")
        per_item = np.array([s[0] for s in summaries], dtype=np.float64)
        return MetricValue(float(per_item.mean()), float(per_item.std()), per_item,
                           {"n_samples": int(min(s[1] for s in summaries))})


class Smoothness(Metric):
    """Distance of the predicted motion's smoothness from real motion's: ``|log(a_pred / a_gt)|``.

    Per item: ``a`` is the mean ``‖second difference‖`` (mm/frame², :func:`mean_acceleration`) of
    ``pred_landmarks`` and of ``gt_landmarks`` (same length); the item's value is the absolute log
    of their ratio; value = mean over items. 0 is as smooth as real motion and any departure —
    jitter (ratio above 1) or over-damped/static motion (ratio below 1) — scores above 0, so
    "lower is better" holds in both directions (version 1 reported the bare ratio, whose "lower"
    rewarded a static sequence). ``details["ratio"]`` keeps the mean ratio (1 = real) for reading
    which side a method errs on.
    """

    name: ClassVar[str] = "smoothness"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "|log| of the mean frame-to-frame acceleration relative to the ground truth's"
    unit: ClassVar[str] = "|log ratio|"
    direction: ClassVar[str] = "lower"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_landmarks"})

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[tuple[float, float]]:
        """Per item: the mean acceleration (mm/frame^2) of its prediction and of its ground truth."""
        out = []
        for i, it in enumerate(items):
            where = f"item {i} ({it.identity}/{it.label})"
            pred, gt = it.pred_landmarks, it.gt_landmarks
            if pred is None:
                raise ComponentError(f"metric {self.name!r}: {where} has no pred_landmarks")
            if np.shape(pred) != np.shape(gt):
                raise ComponentError(f"metric {self.name!r}: {where} prediction {np.shape(pred)} and ground "
                                     f"truth {np.shape(gt)} differ in shape")
            if len(gt) < 3:
                raise ComponentError(f"metric {self.name!r}: {where} has {len(gt)} frames; need >= 3")
            out.append((mean_acceleration(pred), mean_acceleration(gt)))
        return out

    def finalize(self, summaries: Seq[tuple[float, float]], ctx: EvalContext) -> MetricValue:
        if not summaries:
            raise ComponentError(f"metric {self.name!r} got no items to score")
        pred_acc = np.array([s[0] for s in summaries])
        gt_acc = np.array([s[1] for s in summaries])
        ratio = np.array([max(p, _MIN_ACCEL) / max(g, _MIN_ACCEL) for p, g in summaries], dtype=np.float64)
        per_item = np.abs(np.log(ratio))
        return MetricValue(float(per_item.mean()), float(per_item.std()), per_item,
                           {"pred_accel_mm": float(pred_acc.mean()), "gt_accel_mm": float(gt_acc.mean()),
                            "ratio": float(ratio.mean())})
