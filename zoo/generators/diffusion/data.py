"""Landmark-sequence training data for sequence models: random-length batches."""
from __future__ import annotations


import numpy as np

from fc4dfs.datasets.base import Dataset, resample_frames


class SequenceBank:
    """Training sequences as flattened landmark arrays ``[T_i, D]`` with label indices."""

    def __init__(self, data: Dataset) -> None:
        if not data.sequences:
            raise ValueError(f"dataset {data.name!r} has no sequences to train on")
        self.labels = list(data.labels)
        self.seqs = [s.landmarks.reshape(s.length, -1).astype(np.float32) for s in data.sequences]
        self.label_ids = np.array([data.label_index(s.label) for s in data.sequences], dtype=np.int64)
        self.lengths = np.array([len(s) for s in self.seqs], dtype=np.int64)
        self.feature_dim = int(self.seqs[0].shape[1])
        self.num_landmarks = self.feature_dim // 3
        self._neutrals: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.seqs)

    def all_frames(self) -> np.ndarray:
        return np.concatenate(self.seqs, 0)

    def length_range(self) -> tuple[int, int]:
        return int(max(2, self.lengths.min())), int(max(2, self.lengths.max()))

    def batch(self, idx: np.ndarray, length: int) -> np.ndarray:
        """Sequences ``idx`` resampled over their whole duration to ``length`` frames: ``[B, length, D]``."""
        return np.stack([resample_frames(self.seqs[i], length) for i in idx]).astype(np.float32)

    def mix_identities(self, x: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
        """Identity augmentation: with probability ``prob`` a sequence keeps its motion (frames minus
        frame 0) on a new neutral ``N_i + u (N_j - N_i)``, u ~ U(-0.5, 1.5), of two training neutrals.

        Works on normalised data too (per-coordinate affine maps commute with it). It teaches the
        model that anatomy is arbitrary but constant over a sequence, which geometry-adaptive
        generation from an unseen face relies on.
        """
        if self._neutrals is None:
            self._neutrals = np.stack([s[0] for s in self.seqs])
        out = x.copy()
        for b in np.nonzero(rng.random(len(x)) < prob)[0]:
            i, j = rng.integers(0, len(self._neutrals), size=2)
            u = rng.uniform(-0.5, 1.5)
            neutral = self._neutrals[i] + u * (self._neutrals[j] - self._neutrals[i])
            out[b] = x[b] - x[b, :1] + neutral
        return out
