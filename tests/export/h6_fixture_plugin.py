"""A test-only plugin: tiny dataset + two small (but real, least-squares) components.

``generate`` tests must not depend on the zoo's models being trained; these fit in milliseconds:
the generator learns each label's mean landmark-displacement curve, the decoder a ridge map from
landmark displacements to vertex displacements.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fc4dfs.datasets.base import resample_frames
from fc4dfs.plugins.contracts import Decoder, Generator
from fc4dfs.plugins.hookspecs import PLUGIN_API_VERSION, hookimpl
from fc4dfs.plugins.spec import ComponentSpec

fc4dfs_api_version = PLUGIN_API_VERSION
_K = 16  # curve samples


class MeanCurveGenerator(Generator):
    name = "h6_meancurve"
    description = "test fixture: per-label mean landmark displacement curve"
    defaults: dict[str, Any] = {}
    budgets = {b: {} for b in ("smoke", "quick", "paper")}

    def fit(self, data, budget, seed=0, device="cpu", workdir=None, progress=True):
        self.topology, self.labels = data.topology, list(data.labels)
        curves = np.zeros((len(self.labels), _K, data.topology.num_landmarks, 3), np.float32)
        for k, lab in enumerate(self.labels):
            seqs = [s for s in data.sequences if s.label == lab]
            curves[k] = np.mean([resample_frames(s.landmarks - s.landmarks[:1], _K) for s in seqs], 0)
        self.curves = curves
        return {"labels": len(self.labels)}

    def generate(self, neutral_landmarks, labels, length, fps=None, seed=None):
        self.check_generate_inputs(neutral_landmarks, labels, length)
        ids = self.label_ids(labels)
        disp = np.stack([resample_frames(self.curves[i], int(length)) for i in ids])
        return (neutral_landmarks[:, None] + disp).astype(np.float32)

    def state_tensors(self):
        return {"curves": torch.from_numpy(np.ascontiguousarray(self.curves))}

    def restore(self, tensors, meta, device="cpu"):
        self.curves = tensors["curves"].numpy()


class RidgeDecoder(Decoder):
    name = "h6_ridge"
    description = "test fixture: ridge regression from landmark to vertex displacements"
    defaults: dict[str, Any] = {"alpha": 1.0}
    budgets = {b: {} for b in ("smoke", "quick", "paper")}

    def fit(self, data, budget, seed=0, device="cpu", workdir=None, progress=True):
        self.topology, self.labels = data.topology, list(data.labels)
        x = np.concatenate([(s.landmarks - s.landmarks[:1]).reshape(s.length, -1) for s in data.sequences])
        y = np.concatenate([(s.frames - s.frames[:1]).reshape(s.length, -1) for s in data.sequences])
        a = x.T @ x + self.options["alpha"] * np.eye(x.shape[1])
        self.w = np.linalg.solve(a, x.T @ y).astype(np.float32)
        return {"samples": len(x)}

    def decode(self, neutral_mesh, neutral_landmarks, landmarks):
        self.check_decode_inputs(neutral_mesh, neutral_landmarks, landmarks)
        b, t = landmarks.shape[:2]
        d = (landmarks - neutral_landmarks[:, None]).reshape(b * t, -1) @ self.w
        return (neutral_mesh[:, None] + d.reshape(b, t, -1, 3)).astype(np.float32)

    def state_tensors(self):
        return {"w": torch.from_numpy(np.ascontiguousarray(self.w))}

    def restore(self, tensors, meta, device="cpu"):
        self.w = tensors["w"].numpy()


@hookimpl
def fc4dfs_generators():
    return [ComponentSpec("generator", "h6_meancurve", f"{__name__}:MeanCurveGenerator",
                          MeanCurveGenerator.description)]


@hookimpl
def fc4dfs_decoders():
    return [ComponentSpec("decoder", "h6_ridge", f"{__name__}:RidgeDecoder", RidgeDecoder.description)]


@hookimpl
def fc4dfs_datasets():
    return [ComponentSpec("dataset", "h6_tiny", "fc4dfs.datasets.fixtures:tiny_dataset", "tiny fixture dataset")]
