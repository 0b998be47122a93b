"""Expression phases (onset / apex / offset) and intensity from a sequence's displacement curve.

One rule for data and for generated sequences, so that a requested timing or intensity can be
checked against what a model produced (Potamias et al. 2020, §5.1 "Expression Motion Labels"):

- the *displacement curve* ``d_t`` is the mean per-vertex Euclidean distance (mm) of frame ``t``
  from frame 0, smoothed with a centred moving average of :data:`SMOOTH_FRAMES` frames;
- its *peak* ``max_t d_t`` is the sequence's apex displacement magnitude (mm);
- **onset**: the first frame where ``d`` reaches :data:`ONSET_FRACTION` of the peak;
- **apex**: the first frame where ``d`` reaches :data:`APEX_FRACTION` of the peak;
- **offset**: the last frame at or above :data:`APEX_FRACTION` of the peak (the end of the apex
  hold, where the offset phase starts; the last frame for a neutral-to-apex sequence);
- **rest**: the first frame after the offset back at or below :data:`ONSET_FRACTION` of the peak
  (the last frame when it never returns).

Times are relative, ``frame / (T - 1)`` in [0, 1], so a timing applies to any length. A curve whose
peak is below :data:`MIN_MOTION_MM` has no phases (onset = apex = offset = rest = 0).

*Intensity* is relative: a sequence's peak divided by the mean peak of its label's reference
sequences (1 = the dataset's typical apex; the continuous counterpart of the paper's Eq. 6 scale).
"""
from __future__ import annotations

from typing import Mapping, Sequence as Seq

import numpy as np

ONSET_FRACTION = 0.10
APEX_FRACTION = 0.90
SMOOTH_FRAMES = 3
#: below this peak displacement (mm) a sequence is taken as not moving at all
MIN_MOTION_MM = 1e-3
PHASES = ("onset", "apex", "offset")


def displacement_curve(frames: np.ndarray, smooth: int = SMOOTH_FRAMES) -> np.ndarray:
    """``[T]`` mean per-vertex distance (mm) of each frame of ``frames [T, V, 3]`` from frame 0, smoothed."""
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim != 3 or f.shape[-1] != 3 or f.shape[0] < 2:
        raise ValueError(f"frames must be [T >= 2, V, 3], got {f.shape}")
    d = np.linalg.norm(f - f[:1], axis=-1).mean(-1).astype(np.float64)
    return smooth_curve(d, smooth)


def smooth_curve(d: np.ndarray, smooth: int = SMOOTH_FRAMES) -> np.ndarray:
    """Centred moving average of ``smooth`` frames (edges padded with the end values); frame 0 kept."""
    d = np.asarray(d, dtype=np.float64)
    if smooth <= 1 or len(d) < smooth:
        return d
    half = smooth // 2
    padded = np.concatenate([np.full(half, d[0]), d, np.full(half, d[-1])])
    out = np.convolve(padded, np.ones(smooth) / smooth, mode="valid")
    out[0] = d[0]
    return out


def timing_from_curve(d: np.ndarray) -> dict[str, float]:
    """``{"onset", "apex", "offset", "rest"}`` in relative time from a displacement curve ``[T]`` (the rule above)."""
    d = np.asarray(d, dtype=np.float64)
    t = len(d)
    if t < 2:
        raise ValueError(f"a displacement curve needs >= 2 frames, got {t}")
    peak = float(d.max())
    if peak < MIN_MOTION_MM:
        return {"onset": 0.0, "apex": 0.0, "offset": 0.0, "rest": 0.0}
    above_on = d >= ONSET_FRACTION * peak
    above_apex = d >= APEX_FRACTION * peak
    onset = int(np.argmax(above_on))
    apex = int(np.argmax(above_apex))
    offset = int(t - 1 - np.argmax(above_apex[::-1]))
    back = np.nonzero(d[offset:] <= ONSET_FRACTION * peak)[0]
    rest = offset + int(back[0]) if len(back) else t - 1
    return {k: v / (t - 1) for k, v in (("onset", onset), ("apex", apex), ("offset", offset), ("rest", rest))}


def measure_timing(frames: np.ndarray) -> dict[str, float]:
    """Relative onset/apex/offset/rest of a mesh sequence ``[T, V, 3]`` (see the module's rule)."""
    return timing_from_curve(displacement_curve(frames))


def apex_magnitude(frames: np.ndarray) -> float:
    """Peak of the displacement curve (mm) of a mesh sequence ``[T, V, 3]``."""
    return float(displacement_curve(frames).max())


def phase_amplitude(timing: Mapping[str, float], length: int) -> np.ndarray:
    """``[T]`` expression amplitude in [0, 1]: 0 before the onset, linear to 1 at the apex, 1 until the
    offset, linear back to 0 at the rest (Potamias et al. Fig. 2 motion labels).

    ``timing`` holds relative ``onset <= apex <= offset``; ``rest`` defaults to 1.0 (with ``offset``
    1.0 the expression is held to the end).
    """
    onset, apex, offset = (float(timing[k]) for k in PHASES)
    rest = float(timing.get("rest", 1.0))
    rest = max(rest, offset)
    x = np.linspace(0.0, 1.0, int(length))
    rise = np.clip((x - onset) / max(apex - onset, 1e-6), 0.0, 1.0)
    fall = 1.0 - np.clip((x - offset) / max(rest - offset, 1e-6), 0.0, 1.0) if offset < 1.0 else np.ones_like(x)
    return np.minimum(rise, fall).astype(np.float32)


def check_timing(timing: Mapping[str, float], what: str = "timing") -> dict[str, float]:
    """The timing as floats; ValueError naming ``what`` unless ``0 <= onset <= apex <= offset <= 1``."""
    missing = [k for k in PHASES if k not in timing]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)} (give onset=..,apex=..,offset=.. in relative time 0..1)")
    unknown = sorted(set(timing) - set(PHASES) - {"rest"})
    if unknown:
        raise ValueError(f"{what} has unknown phase(s) {', '.join(unknown)}; its phases are onset, apex, offset, rest")
    out = {k: float(v) for k, v in timing.items()}
    order = [out["onset"], out["apex"], out["offset"]] + ([out["rest"]] if "rest" in out else [])
    if not all(0.0 <= v <= 1.0 for v in order) or any(a > b for a, b in zip(order, order[1:])):
        raise ValueError(f"{what} must satisfy 0 <= onset <= apex <= offset{' <= rest' if 'rest' in out else ''} "
                         f"<= 1 (relative time), got {', '.join(f'{k}={v:g}' for k, v in out.items())}")
    return out


def parse_timing(text: str) -> dict[str, float]:
    """``"onset=0.1,apex=0.4,offset=0.8"`` -> checked timing dict; ValueError naming the bad part."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"cannot read {part!r}; use onset=..,apex=..,offset=.. (relative time 0..1)") from None
    return check_timing(out)


def label_peaks(sequences: Seq) -> dict[str, float]:
    """Mean apex displacement magnitude (mm) per label over ``sequences`` (objects with ``label``, ``frames``)."""
    peaks: dict[str, list[float]] = {}
    for s in sequences:
        peaks.setdefault(s.label, []).append(apex_magnitude(s.frames))
    return {k: float(np.mean(v)) for k, v in peaks.items()}


def relative_intensity(frames: np.ndarray, typical_peak: float) -> float:
    """A sequence's apex magnitude relative to its label's typical one (1 = typical apex)."""
    return apex_magnitude(frames) / max(float(typical_peak), MIN_MOTION_MM)
