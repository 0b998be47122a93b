"""Shared helpers of the decoder tests: a one-sequence dataset and error measures."""
from __future__ import annotations

import numpy as np

from fc4dfs.datasets.base import Dataset
from fc4dfs.datasets.fixtures import tiny_dataset


def one_sequence() -> Dataset:
    ds = tiny_dataset()
    seq = next(s for s in ds.sequences if s.identity == ds.identities[0] and s.kind == "n2e")
    return Dataset("one", ds.topology, [seq], ds.labels, neutrals={seq.identity: ds.neutral(seq.identity)})


def errors(dec, ds: Dataset) -> tuple[float, float]:
    """Mean per-vertex error of the decoder and of predicting the neutral (mm)."""
    seq = ds.sequences[0]
    mesh = ds.neutral(seq.identity)[None]
    pred = dec.decode(mesh, ds.topology.landmarks(mesh), seq.landmarks[None])[0]
    frames = np.asarray(seq.frames)
    return (float(np.linalg.norm(pred - frames, axis=-1).mean()),
            float(np.linalg.norm(frames - frames[0], axis=-1).mean()))
