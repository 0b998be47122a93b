"""Shared by the conditional-VAE generator tests: overfitting one sequence against the static baseline."""
from __future__ import annotations

import numpy as np

from fc4dfs.plugins.contracts import Budget, Generator
from rnn_overfit import one_sequence_dataset
from limits import assert_below


def assert_cvae_overfits_one_sequence(cls: type[Generator], options: dict, hp: dict, margin: float = 0.35) -> None:
    """Trained on one sequence (at length 20 and its native length), prior samples at both lengths
    lie within ``margin`` x the static-neutral baseline's error (the sequence's own motion)."""
    data = one_sequence_dataset()
    seq = data.sequences[0]
    g = cls(**options, train_lengths=[20])
    g.fit(data, Budget("smoke", hp), seed=0, progress=False)
    for length in (seq.length, 20):
        gt = seq.resampled(length).landmarks
        out = g.generate(np.repeat(gt[:1], 3, 0), [seq.label] * 3, length, seed=2)
        static = float(np.linalg.norm(gt - gt[:1], axis=-1).mean())
        err = float(np.linalg.norm(out - gt[None], axis=-1).mean())
        assert_below(err, margin * static, f"{cls.name} at length {length} (limit {margin} x static {static:.3f} mm)",
                     " mm")
