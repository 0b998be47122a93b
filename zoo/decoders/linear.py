"""The "Linear" baseline of Zou et al. 2023, Table 5: one linear map from the landmark
displacements to the vertex displacements, fitted in closed form.

    Delta M_f = W^T Delta L_f,   W = argmin_W ||X W - Y||^2 + r ||W||^2,   r = ridge * tr(X^T X) / D

with ``X`` [N, D = 3L] the training frames' landmark displacements from their identity's neutral,
``Y`` [N, 3V] the vertex displacements (mm), and ``M_f = M + Delta M_f``. The solution is
``W = (X^T X + r I)^+ X^T Y``, with ``X^T X`` and ``X^T Y`` accumulated over chunks of frames (memory
``O(D * 3V)``, not ``O(N * 3V)``). ``ridge`` is relative to the mean eigenvalue of ``X^T X`` so that
it does not depend on the units; with ``ridge=0`` the pseudo-inverse gives numpy's least-squares
(minimum-norm) solution, directions of ``X`` with singular values under ``RCOND`` (1e-6) of the
largest counting as null (float32 round-off). The default ``1e-6`` only steadies rank-deficient landmark sets (e.g.
landmarks that never move): a few hundred frames already determine the 3L = 204 unknowns per
output coordinate.

Departure: the paper's "Linear [10]" row is Casas & Otaduy's autoencoder (linear, nonlinear and
linear layers) whose decoder consumes the neutral's latent code concatenated with ``Delta L_f``;
here it is the closed-form linear regression, identity-blind like S2D (the neutral enters only
through the addition). Closed-form, so it does not go through the epoch-based TrainLoop.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fc4dfs.datasets.base import Dataset
from fc4dfs.plugins.contracts import Budget, ComponentError, Decoder
from fc4dfs.zoo.decoders.common import collect_frames

#: frames per chunk when accumulating the normal equations
CHUNK = 512
#: singular values of X below this fraction of the largest are treated as zero (the inputs are
#: float32 millimetres: relative round-off ~1e-7)
RCOND = 1e-6


def ridge_solve(x: np.ndarray, y: np.ndarray, ridge: float, chunk: int = CHUNK, rcond: float = RCOND) -> np.ndarray:
    """``W`` [D, K] minimising ``||x W - y||^2 + r ||W||^2``, ``r = ridge * tr(x^T x) / D``.

    ``x`` [N, D], ``y`` [N, K]; computed in float64 from chunked normal equations. With
    ``ridge=0`` it is the minimum-norm least-squares solution (``np.linalg.lstsq(x, y, rcond)``),
    singular values of ``x`` below ``rcond`` times the largest counting as zero.
    Raises :class:`ComponentError` for a negative ``ridge`` or mismatched rows.
    """
    if ridge < 0:
        raise ComponentError(f"linear option ridge must be >= 0, got {ridge}")
    if len(x) != len(y):
        raise ComponentError(f"{len(x)} input rows for {len(y)} target rows")
    d = x.shape[1]
    g = np.zeros((d, d))
    b = np.zeros((d, y.shape[1]))
    for s in range(0, len(x), chunk):
        xs = np.asarray(x[s:s + chunk], np.float64)
        g += xs.T @ xs
        b += xs.T @ np.asarray(y[s:s + chunk], np.float64)
    g[np.diag_indices(d)] += ridge * np.trace(g) / max(d, 1)
    return np.linalg.pinv(g, rcond=rcond ** 2, hermitian=True) @ b  # eigenvalues of g are squared singular values


class LinearDecoder(Decoder):
    """Closed-form linear map from landmark displacements to vertex displacements."""

    name: ClassVar[str] = "linear"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("Linear baseline (Zou et al. 2023 Table 5): vertex displacements as one linear map "
                                  "of the landmark displacements, least squares in closed form")
    defaults: ClassVar[dict[str, Any]] = {"ridge": 1e-6}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_frames": 400},
        "quick": {"max_frames": None},
        "paper": {"max_frames": None},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        try:
            ridge = float(self.options["ridge"])
        except (TypeError, ValueError):
            raise ComponentError(f"linear option ridge must be a number >= 0, got {self.options['ridge']!r}") from None
        if not ridge >= 0:
            raise ComponentError(f"linear option ridge must be a number >= 0, got {self.options['ridge']!r}")
        self.weights: np.ndarray | None = None  # [3L, 3V] mm per mm

    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        hp = budget.pick(self.budgets)
        t0 = time.perf_counter()
        self.topology, self.labels = data.topology, list(data.labels)
        fs = collect_frames(data, hp.get("max_frames"))
        n = len(fs.frames)
        x = (fs.landmarks - fs.neutral_landmarks[fs.ident]).reshape(n, -1)
        y = (fs.frames - fs.neutrals[fs.ident]).reshape(n, -1)
        self.weights = ridge_solve(x, y, float(self.options["ridge"]))
        fit_err = float(np.linalg.norm((x @ self.weights - y).reshape(n, -1, 3), axis=-1).mean())
        self.train_report = {"frames": int(n), "ridge": float(self.options["ridge"]),
                             "train_error_mm": fit_err, "seconds": time.perf_counter() - t0}
        return self.train_report

    def decode(self, neutral_mesh: np.ndarray, neutral_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        self.check_decode_inputs(neutral_mesh, neutral_landmarks, landmarks)
        assert self.weights is not None
        b, t, l, _ = landmarks.shape
        dl = (np.asarray(landmarks, np.float64) - np.asarray(neutral_landmarks, np.float64)[:, None])
        dm = (dl.reshape(b * t, l * 3) @ self.weights).reshape(b, t, -1, 3)
        return (np.asarray(neutral_mesh, np.float64)[:, None] + dm).astype(np.float32)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.weights is not None
        return {"weights": torch.from_numpy(np.ascontiguousarray(self.weights, dtype=np.float64))}

    def state_meta(self) -> dict[str, Any]:
        return {"ridge": float(self.options["ridge"])}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.weights = tensors["weights"].numpy()
