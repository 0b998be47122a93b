"""Control adherence: does a generated sequence show the intensity and timing it was asked for?

Neither FC-4DFS, Zou et al. nor Potamias et al. report these; both are measured on the generated
meshes with the rule the data's own phases and intensity are measured by
(:mod:`fc4dfs.datasets.phases`), on held-out identities, and apply only to items of a component that
controls them (the protocol fills ``EvalItem.intensity_sweep`` / ``requested_timing``).

- ``intensity_r2`` and ``intensity_slope_err``: each test condition is generated at several
  requested intensities ``x_k`` (e2e option ``intensities``, default 0.25/0.5/1/1.5); ``y_k`` is the
  generated apex displacement magnitude divided by the ground-truth sequence's own. A least-squares
  line ``y = a x + b`` over all (x, y) of all items gives ``intensity_r2`` (its R², higher is better)
  and ``intensity_slope_err`` = ``|a - 1|`` (a = 1: intensity 1 reproduces the real apex and the
  magnitude scales in proportion); ``details`` hold ``slope`` and ``intercept``.
- ``timing_err``: frames between the requested onset/apex/offset and those measured on the
  generated sequence, averaged over the three phases and the items (``details``: per phase).
"""
from __future__ import annotations

from typing import ClassVar, Sequence as Seq

import numpy as np

from fc4dfs.datasets.phases import PHASES, apex_magnitude, measure_timing
from fc4dfs.plugins.contracts import EvalContext, EvalItem, Metric, MetricValue
from fc4dfs.plugins.errors import ComponentError


def _sweep_points(items: Seq[EvalItem]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for it in items:
        sweep = it.intensity_sweep or {}
        levels = np.asarray(sweep.get("levels", []), dtype=np.float64)
        meshes = sweep.get("meshes")
        if meshes is None or len(levels) != len(meshes) or len(levels) < 2:
            raise ComponentError(f"intensity sweep of {it.identity}/{it.label} needs >= 2 levels with one "
                                 "mesh sequence each")
        ref = max(apex_magnitude(it.gt_mesh), 1e-6)
        out.append((levels, np.array([apex_magnitude(m) for m in meshes]) / ref))
    return out


def line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = a x + b``: ``(a, b, R^2)`` (a constant ``y`` fitted exactly has R^2 = 1)."""
    a, b = np.polyfit(x, y, 1)
    resid = float(((y - (a * x + b)) ** 2).sum())
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - resid / total if total > 1e-12 else (1.0 if resid < 1e-12 else 0.0)
    return float(a), float(b), float(r2)


class _IntensityMetric(Metric):
    """Per item (summary): ``(levels [K], relative apex magnitudes [K])``."""

    requires: ClassVar[frozenset[str]] = frozenset({"gt_mesh", "intensity_sweep"})
    unit: ClassVar[str] = ""

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[tuple[np.ndarray, np.ndarray]]:
        return _sweep_points(items)

    def _fits(self, pts: Seq[tuple[np.ndarray, np.ndarray]]
              ) -> tuple[tuple[float, float, float], list[tuple[float, float, float]]]:
        if not pts:
            raise ComponentError(f"metric {self.name!r} got no items to score")
        pooled = line_fit(np.concatenate([p[0] for p in pts]), np.concatenate([p[1] for p in pts]))
        return pooled, [line_fit(x, y) for x, y in pts]


class IntensityR2(_IntensityMetric):
    name: ClassVar[str] = "intensity_r2"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("R^2 of generated apex displacement magnitude (relative to the real one) "
                                  "against requested intensity")
    direction: ClassVar[str] = "higher"

    def finalize(self, summaries: Seq[tuple[np.ndarray, np.ndarray]], ctx: EvalContext) -> MetricValue:
        (a, b, r2), each = self._fits(summaries)
        return MetricValue(r2, None, np.array([f[2] for f in each]),
                           details={"slope": a, "intercept": b, "levels": summaries[0][0].tolist()})


class IntensitySlopeError(_IntensityMetric):
    name: ClassVar[str] = "intensity_slope_err"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("|slope - 1| of generated apex displacement magnitude (relative to the real "
                                  "one) against requested intensity")
    direction: ClassVar[str] = "lower"

    def finalize(self, summaries: Seq[tuple[np.ndarray, np.ndarray]], ctx: EvalContext) -> MetricValue:
        (a, b, _), each = self._fits(summaries)
        return MetricValue(abs(a - 1.0), None, np.array([abs(f[0] - 1.0) for f in each]),
                           details={"slope": a, "intercept": b})


def timing_errors(item: EvalItem) -> dict[str, float]:
    """Frames between the requested and the generated onset/apex/offset of one item."""
    if item.pred_mesh is None or item.requested_timing is None:
        raise ComponentError(f"{item.identity}/{item.label} has no generated mesh or requested timing")
    got = measure_timing(item.pred_mesh)
    frames = len(item.pred_mesh) - 1
    return {k: abs(got[k] - float(item.requested_timing[k])) * frames for k in PHASES}


class TimingError(Metric):
    name: ClassVar[str] = "timing_err"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("Frames between requested and generated onset/apex/offset, measured from the "
                                  "displacement curve")
    unit: ClassVar[str] = "frames"
    direction: ClassVar[str] = "lower"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_mesh", "requested_timing"})

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[dict[str, float]]:
        """Per item: :func:`timing_errors`."""
        return [timing_errors(it) for it in items]

    def finalize(self, summaries: Seq[dict[str, float]], ctx: EvalContext) -> MetricValue:
        if not summaries:
            raise ComponentError("metric 'timing_err' got no items to score")
        per_item = np.array([np.mean(list(e.values())) for e in summaries])
        return MetricValue(float(per_item.mean()), float(per_item.std()), per_item,
                           details={k: float(np.mean([e[k] for e in summaries])) for k in PHASES})
