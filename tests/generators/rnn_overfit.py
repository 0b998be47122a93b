"""Shared by the MLP / LSTM / FC-LSTM generator tests: the one-sequence overfit check."""
from __future__ import annotations

import numpy as np

from fc4dfs.datasets.base import Dataset
from fc4dfs.plugins.contracts import Budget, Generator
from fc4dfs.datasets.fixtures import tiny_dataset
from limits import assert_below


def one_sequence_dataset() -> Dataset:
    """A dataset holding a single n2e2n sequence of the conformance kit's tiny dataset."""
    ds = tiny_dataset()
    seq = next(s for s in ds.sequences if s.kind == "n2e2n")
    return Dataset("one", ds.topology, [seq], ds.labels)


def assert_overfits_one_sequence(cls: type[Generator], options: dict, lengths: list[int], epochs: int) -> None:
    """Train on one sequence (at ``lengths`` and its native length): error < 5% of its mean motion."""
    data = one_sequence_dataset()
    seq = data.sequences[0]
    g = cls(**options, train_lengths=lengths)
    budget = Budget("smoke", {"epochs": epochs, "lr": 1e-2, "lr_final_ratio": 0.01, "one_length_per_epoch": False})
    g.fit(data, budget, seed=0, progress=False)
    motion = np.linalg.norm(seq.landmarks - seq.landmarks[0], axis=-1).mean()
    for length in [seq.length] + lengths:
        gt = seq.resampled(length)
        out = g.generate(gt.landmarks[:1], [seq.label], length, fps=gt.fps)
        err = np.linalg.norm(out[0] - gt.landmarks, axis=-1).mean()
        assert_below(err, 0.05 * motion, f"{cls.name} at length {length} (limit 0.05 x motion {motion:.3f} mm)", " mm")
