"""Aligned CoMA (FC-4DFS §4.1): cut raw neutral→apex→neutral captures into neutral→apex sequences.

Raw CoMA sequences hold long still stretches at the neutral and at the apex, and their lengths and
patterns vary. Aligned CoMA keeps only the motion between them and normalises lengths by
resampling, without padding neutral or apex frames. For one sequence ``x_0 … x_{T-1}``:

1. ``d_t`` = mean over vertices of ``|x_t - x_0|`` (mm): the displacement from the first frame.
2. ``s`` = ``d`` smoothed by a centred moving average of ``smooth`` frames (edges repeated).
3. ``peak = max s``. The **apex** is the *first* frame with ``s_t >= apex_ratio * peak`` (the
   start of the apex plateau, 95 % by default), not the argmax, which may lie anywhere in the
   plateau of a held expression.
4. The **onset** is the last frame before the apex with ``s_t <= onset_ratio * peak`` (5 %): the
   end of the neutral hold (frame 0 if the face starts moving at once).
5. The neutral→apex part is frames onset..apex. When ``include_offset``, the apex→neutral part
   runs from the *last* frame with ``s_t >= apex_ratio * peak`` (end of the plateau) to the first
   later frame with ``s_t <= onset_ratio * peak``; it is stored time-reversed so that, like every
   sequence of the suite, it starts at the neutral (an ``n2e`` sequence whose motion is the real
   release played backwards). No offset part exists if the face never returns to neutral.
6. Each part is resampled to every length in ``lengths`` by linear interpolation at evenly spaced
   *capture times* (the frame numbers in the file names, so a gap in the capture does not bend
   the timing); its frame rate becomes ``(L - 1) / duration``.

Sequences whose peak displacement is below ``min_peak_mm`` hold no expression and are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AlignOptions:
    lengths: tuple[int, ...] = (20, 25, 30)
    include_offset: bool = False
    smooth: int = 5
    apex_ratio: float = 0.95
    onset_ratio: float = 0.05
    min_peak_mm: float = 0.5

    def __post_init__(self) -> None:
        if not self.lengths or any(int(n) < 2 for n in self.lengths):
            raise ValueError(f"aligned lengths must be integers >= 2, got {self.lengths}")
        if not 0.0 <= self.onset_ratio < self.apex_ratio <= 1.0:
            raise ValueError(f"need 0 <= onset_ratio < apex_ratio <= 1, got {self.onset_ratio}, {self.apex_ratio}")
        if int(self.smooth) < 1:
            raise ValueError(f"smooth must be >= 1 frame, got {self.smooth}")

    def as_dict(self) -> dict:
        return {"lengths": list(self.lengths), "include_offset": self.include_offset, "smooth": self.smooth,
                "apex_ratio": self.apex_ratio, "onset_ratio": self.onset_ratio, "min_peak_mm": self.min_peak_mm}


@dataclass(frozen=True)
class Cut:
    """Frames ``start..stop`` (inclusive, indices into the raw sequence); ``reverse`` for offsets."""

    part: str  # "onset" (neutral→apex) or "offset" (apex→neutral, stored reversed)
    start: int
    stop: int
    apex: int
    reverse: bool = False


def displacement_curve(frames: np.ndarray) -> np.ndarray:
    """``[T]`` mean per-vertex distance (mm) of each frame from frame 0."""
    f = np.asarray(frames, dtype=np.float32)
    return np.linalg.norm(f - f[:1], axis=-1).mean(-1)


def smooth_curve(d: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` frames (made odd, at most the length); edges repeated."""
    w = max(1, min(int(window), len(d)))
    w -= (w + 1) % 2
    if w <= 1:
        return d.astype(np.float64)
    pad = w // 2
    padded = np.concatenate([np.full(pad, d[0]), d, np.full(pad, d[-1])]).astype(np.float64)
    return np.convolve(padded, np.ones(w) / w, mode="valid")


def find_cuts(frames: np.ndarray, opts: AlignOptions) -> tuple[list[Cut], dict]:
    """The neutral→apex cut (and the offset cut when asked) of one raw sequence, and the curve stats."""
    s = smooth_curve(displacement_curve(frames), opts.smooth)
    peak = float(s.max())
    stats = {"peak_mm": peak}
    if peak < opts.min_peak_mm or len(s) < 2:
        return [], stats
    hi, lo = opts.apex_ratio * peak, opts.onset_ratio * peak
    above = np.flatnonzero(s >= hi)
    apex, release = int(above[0]), int(above[-1])
    before = np.flatnonzero(s[:apex + 1] <= lo)
    onset = int(before[-1]) if len(before) else 0
    cuts: list[Cut] = []
    if apex > onset:
        cuts.append(Cut("onset", onset, apex, apex))
    if opts.include_offset:
        after = np.flatnonzero(s[release:] <= lo)
        if len(after):
            end = release + int(after[0])
            if end > release:
                cuts.append(Cut("offset", release, end, release, reverse=True))
    stats.update(apex=apex, onset=onset, release=release)
    return cuts, stats


def resample_by_time(frames: np.ndarray, times: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling of ``frames`` taken at increasing ``times`` to ``length`` evenly spaced times."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(times)} time stamps")
    if np.any(np.diff(times) <= 0):
        raise ValueError("time stamps must increase")
    target = np.linspace(times[0], times[-1], length)
    hi = np.clip(np.searchsorted(times, target, side="right"), 1, len(times) - 1)
    lo = hi - 1
    w = ((target - times[lo]) / (times[hi] - times[lo])).astype(np.float32).reshape(-1, 1, 1)
    f = np.asarray(frames, dtype=np.float32)
    out = (1 - w) * f[lo] + w * f[hi]
    out[0], out[-1] = f[0], f[-1]
    return out.astype(np.float32)


def aligned_parts(frames: np.ndarray, frame_numbers: list[int] | np.ndarray, capture_fps: float,
                  opts: AlignOptions) -> list[tuple[dict, np.ndarray]]:
    """``(record, frames [L, V, 3])`` for every cut of one raw sequence and every target length."""
    frames = np.asarray(frames, dtype=np.float32)
    numbers = np.asarray(frame_numbers, dtype=np.float64)
    cuts, stats = find_cuts(frames, opts)
    out = []
    for cut in cuts:
        idx = np.arange(cut.start, cut.stop + 1)
        times = numbers[idx]
        if cut.reverse:
            idx, times = idx[::-1], times[-1] - times[::-1] + times[0]
        duration = abs(float(numbers[cut.stop] - numbers[cut.start])) / capture_fps
        for length in opts.lengths:
            part = resample_by_time(frames[idx], times, int(length))
            rec = {"part": cut.part, "raw_frames": [int(numbers[cut.start]), int(numbers[cut.stop])],
                   "apex_frame": int(numbers[cut.apex]), "reversed": cut.reverse, "target_length": int(length),
                   "fps": (int(length) - 1) / duration if duration > 0 else capture_fps,
                   "peak_mm": round(stats["peak_mm"], 4)}
            out.append((rec, part))
    return out
