"""Blendshapes for engines: one morph target per expression label's apex, non-negative weight curves.

Engines animate a face as ``base + sum_k w_k(t) * target_k`` with named targets. For a generated
sequence on a mesh, :func:`apex_targets` takes each label's apex (the frame of largest mean vertex
displacement in that label's generated sequence on the same neutral) as target ``k`` and
:func:`fit_weights` solves, per frame, the non-negative least squares
``min_{w >= 0} || sum_k w_k target_k - (frame_t - base) ||^2`` (``scipy.optimize.nnls``, Lawson &
Hanson 1974). The residual is the export's reconstruction error. Target names are the labels;
``docs`` (README, "Blendshapes") maps them to ARKit's 52 where a counterpart exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True, eq=False)
class Blendshapes:
    """Named morph targets: ``targets [K, V, 3]`` displacements from the neutral, ``names`` K labels."""

    names: list[str]
    targets: np.ndarray


def apex_targets(sequences: Mapping[str, np.ndarray]) -> Blendshapes:
    """One target per label from ``{label: frames [T, V, 3]}`` (frame 0 the shared neutral): the
    displacement of the frame with the largest mean per-vertex displacement."""
    names, targets = [], []
    for label, frames in sequences.items():
        fr = np.asarray(frames, np.float64)
        disp = fr - fr[:1]
        apex = int(np.argmax(np.linalg.norm(disp, axis=-1).mean(-1)))
        names.append(label)
        targets.append(disp[apex])
    return Blendshapes(names, np.asarray(targets, np.float32))


def fit_weights(frames: np.ndarray, shapes: Blendshapes) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Per-frame non-negative weights ``[T, K]`` reproducing ``frames [T, V, 3]`` (frame 0 the base),
    the reconstruction ``[T, V, 3]`` and its error: mean / max per-vertex distance and the motion's
    mean per-vertex displacement (same units as ``frames``)."""
    from scipy.optimize import nnls

    fr = np.asarray(frames, np.float64)
    disp = (fr - fr[:1]).reshape(len(fr), -1)
    a = shapes.targets.reshape(len(shapes.targets), -1).astype(np.float64).T  # [3V, K]
    weights = np.stack([nnls(a, d)[0] for d in disp]).astype(np.float32)
    recon = (fr[:1] + (weights.astype(np.float64) @ a.T).reshape(fr.shape)).astype(np.float32)
    err = np.linalg.norm(recon - fr, axis=-1)
    motion = np.linalg.norm(fr - fr[:1], axis=-1)
    return weights, recon, {"mean": float(err.mean()), "max": float(err.max()), "motion_mean": float(motion.mean())}
