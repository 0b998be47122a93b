"""Temporal structure: onset/apex/offset phases in relative time, lags and overshoot in seconds.

A sequence's phase boundaries are fractions of its duration (so the apex of a 20-frame and a
40-frame sequence sit at the same relative position), while muscle lags and the damped apex
overshoot are in seconds (so the same motion spans more frames at a higher frame rate). A
generator that knows a frame's relative position and the frame rate can place both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fc4dfs.datasets.synthetic.expressions import Style

MIN_FRAMES = 8
#: seconds of the apex overshoot's decay and period
OVERSHOOT_DECAY_S, OVERSHOOT_PERIOD_S = 0.15, 0.3


@dataclass(frozen=True)
class Timing:
    """When a sequence moves: phase boundaries as fractions of ``duration`` (seconds)."""

    kind: str
    fps: float
    length: int
    duration: float
    onset: float      # expression starts leaving neutral
    apex: float       # apex reached
    release: float    # n2e2n: apex held until here (1.0 for n2e)
    rest: float       # n2e2n: back at neutral (1.0 for n2e)
    ease: float
    overshoot: float

    def as_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in asdict(self).items()}


def plan_timing(kind: str, fps_choices: tuple[float, ...], style: Style, max_lag: float,
                rng: np.random.Generator) -> Timing:
    """Draw one sequence's frame rate, length and phase boundaries."""
    fps = float(fps_choices[int(rng.integers(len(fps_choices)))])
    if kind == "n2e":
        dur = rng.uniform(0.8, 1.6) * style.tempo
    elif kind == "n2e2n":
        dur = rng.uniform(1.3, 2.4) * style.tempo
    else:
        raise ValueError(f"sequence kind must be 'n2e' or 'n2e2n', got {kind!r}")
    length = max(MIN_FRAMES, int(round(dur * fps)) + 1)
    dur = (length - 1) / fps
    onset = rng.uniform(0.0, 0.12 if kind == "n2e" else 0.08)
    if kind == "n2e":
        apex = float(np.clip(rng.uniform(0.55, 0.8) + style.onset_bias, 0.45, 0.88))
        release = rest = 1.0
    else:
        apex = float(np.clip(rng.uniform(0.28, 0.42) + 0.5 * style.onset_bias, 0.2, 0.5))
        release = apex + rng.uniform(0.1, 0.22)
        latest = 1.0 - (max_lag + 0.06) / dur
        rest = float(min(release + rng.uniform(0.25, 0.4), latest))
        release = float(min(release, rest - 0.15))
    return Timing(kind, fps, length, dur, float(onset), apex, float(release), rest, style.ease,
                  style.overshoot)


def _rise(x: np.ndarray, p: float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    a, b = x ** p, (1.0 - x) ** p
    return a / (a + b)


def envelope(timing: Timing, lag: float) -> np.ndarray:
    """Per-frame activation ``[T]`` of an action lagging the onset by ``lag`` seconds.

    0 before the onset, an eased rise to 1 at the apex with a small damped overshoot, a hold,
    and for n2e2n an eased fall back to exactly 0.
    """
    tau = np.arange(timing.length) / timing.fps - lag
    d = timing.duration
    t0, ta, tb, tc = timing.onset * d, timing.apex * d, timing.release * d, timing.rest * d
    env = _rise((tau - t0) / max(ta - t0, 1e-6), timing.ease)
    env = np.where(tau <= t0, 0.0, env)
    if timing.kind == "n2e2n":
        fall = 1.0 - _rise((tau - tb) / max(tc - tb, 1e-6), timing.ease)
        env = np.where(tau > tb, fall, env)
        env = np.where(tau >= tc, 0.0, env)
    after = np.maximum(tau - ta, 0.0)
    wobble = timing.overshoot * np.exp(-after / OVERSHOOT_DECAY_S) * np.sin(2 * np.pi * after / OVERSHOOT_PERIOD_S)
    return env * (1.0 + wobble)
