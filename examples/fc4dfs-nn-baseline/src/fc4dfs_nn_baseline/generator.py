"""A nearest-neighbour motion-retrieval generator.

Training stores, per label, every training sequence's landmark *displacements* (frames minus
frame 0) resampled to a fixed number of time steps, with its identity's neutral landmarks.
Generation picks, for each query, the stored sequence of that label whose neutral landmarks are
closest to the query's, resamples its displacements to the requested length, and adds them to
the query's neutral landmarks. Honest and surprisingly strong when identities are similar.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from fc4dfs.datasets import Dataset, resample_frames
from fc4dfs.plugins import Budget, Generator


class NNRetrievalGenerator(Generator):
    name: ClassVar[str] = "nn_retrieval"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Nearest-neighbour motion retrieval"
    defaults: ClassVar[dict[str, Any]] = {"steps": 64}

    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        steps = int(self.options["steps"])
        motions, neutrals, labels = [], [], []
        for seq in data.sequences:
            lm = seq.landmarks
            motions.append(resample_frames(lm - lm[0], steps))
            neutrals.append(lm[0])
            labels.append(data.label_index(seq.label))
        self.topology, self.labels = data.topology, list(data.labels)
        self._motions = np.stack(motions).astype(np.float32)
        self._neutrals = np.stack(neutrals).astype(np.float32)
        self._labels = np.asarray(labels, dtype=np.int64)
        return {"stored_sequences": len(motions)}

    def generate(self, neutral_landmarks: np.ndarray, labels: Sequence[str], length: int,
                 fps: float | None = None, seed: int | None = None) -> np.ndarray:
        self.check_generate_inputs(neutral_landmarks, labels, length)
        ids = self.label_ids(labels)
        out = np.empty((len(ids), int(length)) + neutral_landmarks.shape[1:], dtype=np.float32)
        for b, lab in enumerate(ids):
            pool = np.nonzero(self._labels == lab)[0]
            if len(pool) == 0:
                out[b] = neutral_landmarks[b]
                continue
            d = np.linalg.norm((self._neutrals[pool] - neutral_landmarks[b]).reshape(len(pool), -1), axis=1)
            motion = resample_frames(self._motions[pool[np.argmin(d)]], int(length))
            out[b] = neutral_landmarks[b] + motion
            out[b, 0] = neutral_landmarks[b]
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"motions": torch.from_numpy(self._motions), "neutrals": torch.from_numpy(self._neutrals),
                "labels": torch.from_numpy(self._labels)}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self._motions = tensors["motions"].numpy()
        self._neutrals = tensors["neutrals"].numpy()
        self._labels = tensors["labels"].numpy()
