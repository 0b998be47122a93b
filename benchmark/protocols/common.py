"""Pieces shared by the protocols: pooled statistics and building evaluation items."""
from __future__ import annotations

import numpy as np

from fc4dfs.datasets.base import Sequence


def vertex_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-vertex Euclidean distances ``[..., V]`` in mm."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


class Pooled:
    """Running mean and std over many per-vertex errors without keeping them all."""

    def __init__(self) -> None:
        self.n = 0
        self.s = 0.0
        self.s2 = 0.0

    def add(self, errors: np.ndarray) -> None:
        e = np.asarray(errors, np.float64).ravel()
        self.n += e.size
        self.s += float(e.sum())
        self.s2 += float((e * e).sum())

    def merge(self, other: "Pooled") -> None:
        self.n += other.n
        self.s += other.s
        self.s2 += other.s2

    @property
    def mean(self) -> float:
        return self.s / self.n if self.n else float("nan")

    @property
    def std(self) -> float:
        if not self.n:
            return float("nan")
        return float(np.sqrt(max(self.s2 / self.n - self.mean**2, 0.0)))


def neutral_inputs(dataset, seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """The identity's neutral mesh [1, V, 3] and its landmarks [1, L, 3]."""
    mesh = dataset.neutral(seq.identity)[None]
    return mesh, dataset.topology.landmarks(mesh)
