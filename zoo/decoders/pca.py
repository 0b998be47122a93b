"""PCA-3DMM (Blanz & Vetter) as a landmark decoder, the linear baseline of FC-4DFS Table 2.

Training: PCA of the training meshes (every frame of every training sequence), keeping
``n_components`` (220 as in Table 2, fewer if the data has lower rank). Decoding: for every frame
the coefficients ``c`` are solved from its landmarks by regularised least squares,

    c = argmin ||A c - (L_t - L(mean))||^2 + lambda * sum_k c_k^2 / sigma_k^2,

with ``A`` the components' landmark rows and ``sigma_k^2`` their variances (a Gaussian prior on the
coefficients; ``lambda`` is a landmark noise variance in mm^2), and the mesh is
``mean + sum_k c_k B_k``. ``lambda`` is chosen on held-out training identities (PCA refitted on the
others) unless the ``regularization`` option fixes it. The neutral mesh is not used — the
documented weakness of this baseline on unseen identities.

PCA is closed-form, so it does not go through the epoch-based TrainLoop (nothing to resume).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fc4dfs.datasets.base import Dataset
from fc4dfs.plugins.contracts import Budget, Decoder
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.decoders.common import collect_frames

#: candidate lambdas (mm^2) for the held-out selection
LAMBDA_GRID = tuple(float(x) for x in np.logspace(-3, 3, 13))


def pca(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean [D], components [K, D] orthonormal, variances [K])`` of rows ``x`` [N, D]."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    mean = x.mean(0)
    xc = x - mean
    k = max(1, min(k, n - 1, d)) if n > 1 else 1
    if min(n, d) <= 4000:
        if n <= d:
            w, u = np.linalg.eigh(xc @ xc.T)
            order = np.argsort(w)[::-1][:k]
            w, u = np.maximum(w[order], 0.0), u[:, order]
            comps = (xc.T @ u / np.sqrt(np.maximum(w, 1e-12))).T
        else:
            w, v = np.linalg.eigh(xc.T @ xc)
            order = np.argsort(w)[::-1][:k]
            w, comps = np.maximum(w[order], 0.0), v[:, order].T
    else:
        torch.manual_seed(seed)  # svd_lowrank draws its test matrix from the global generator
        u, s, v = torch.svd_lowrank(torch.from_numpy(xc), q=min(k + 20, n, d), niter=6)
        w, comps = (s.numpy() ** 2)[:k], v.numpy().T[:k]
    keep = w > 1e-9 * max(float(w.max()) if len(w) else 0.0, 1e-30)
    keep[0] = True
    return mean, comps[keep], w[keep] / max(n - 1, 1)


class PCADecoder(Decoder):
    """PCA-3DMM whose coefficients are fitted to the landmarks by regularised least squares."""

    name: ClassVar[str] = "pca"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("PCA-3DMM: PCA of training meshes (220 components); coefficients solved from "
                                  "the landmarks by regularised least squares; ignores the neutral mesh")
    defaults: ClassVar[dict[str, Any]] = {"n_components": 220, "regularization": None}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_frames": 400},
        "quick": {"max_frames": 1200},
        "paper": {"max_frames": None},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if int(self.options["n_components"]) < 1:
            raise ComponentError(f"pca option n_components must be >= 1, got {self.options['n_components']}")
        reg = self.options["regularization"]
        if reg is not None and float(reg) < 0:
            raise ComponentError(f"pca option regularization must be >= 0 or null, got {reg}")
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.variances: np.ndarray | None = None
        self.lam: float = 0.0

    # -- fitting ------------------------------------------------------------------------
    def _landmark_basis(self, mean: np.ndarray, comps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        topo = self.topology
        assert topo is not None
        v, ids, bary = topo.num_vertices, topo.landmark_vertex_ids, topo.lmk_bary.astype(np.float64)

        def lmk(x: np.ndarray) -> np.ndarray:  # [..., V, 3] -> [..., L, 3] in float64
            return np.einsum("...lkc,lk->...lc", x[..., ids, :], bary)

        lm_mean = lmk(mean.reshape(v, 3)).reshape(-1)
        a = lmk(comps.reshape(-1, v, 3)).reshape(len(comps), -1).T  # [3L, K]
        return lm_mean, a

    @staticmethod
    def _solve(a: np.ndarray, var: np.ndarray, lam: float, rhs: np.ndarray) -> np.ndarray:
        """Coefficients ``[K, N]`` for landmark residuals ``rhs`` ``[3L, N]``."""
        m = a.T @ a + np.diag(lam / np.maximum(var, 1e-12))
        m += 1e-9 * np.trace(m) / len(m) * np.eye(len(m))
        return np.linalg.solve(m, a.T @ rhs)

    def _select_lambda(self, fs, seed: int) -> tuple[float, dict[str, float]]:
        ids = np.unique(fs.ident)
        n_val = max(1, int(round(len(ids) / 4)))
        if len(ids) < 2:
            return 1.0, {}
        val = np.isin(fs.ident, ids[-n_val:])
        v = fs.frames.shape[1]
        mean, comps, var = pca(fs.frames[~val].reshape(int((~val).sum()), -1), int(self.options["n_components"]), seed)
        lm_mean, a = self._landmark_basis(mean, comps)
        rhs = (fs.landmarks[val].reshape(int(val.sum()), -1).astype(np.float64) - lm_mean).T
        gt = fs.frames[val].astype(np.float64)
        errs = {}
        for lam in LAMBDA_GRID:
            c = self._solve(a, var, lam, rhs)
            rec = (mean + c.T @ comps).reshape(-1, v, 3)
            errs[f"{lam:.4g}"] = float(np.linalg.norm(rec - gt, axis=-1).mean())
        best = min(errs, key=errs.get)  # type: ignore[arg-type]
        return float(best), errs

    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        hp = budget.pick(self.budgets)
        t0 = time.perf_counter()
        self.topology, self.labels = data.topology, list(data.labels)
        fs = collect_frames(data, hp.get("max_frames"))
        reg = self.options["regularization"]
        errs: dict[str, float] = {}
        lam = float(reg) if reg is not None else None
        if lam is None:
            lam, errs = self._select_lambda(fs, seed)
        mean, comps, var = pca(fs.frames.reshape(len(fs.frames), -1), int(self.options["n_components"]), seed)
        self.mean, self.components, self.variances, self.lam = mean, comps, var, lam
        self._prepare()
        self.train_report = {"frames": int(len(fs.frames)), "components": int(len(comps)), "lambda": lam,
                             "explained_variance_mm2": float(var.sum()), "lambda_validation_mm": errs,
                             "seconds": time.perf_counter() - t0}
        return self.train_report

    def _prepare(self) -> None:
        assert self.mean is not None and self.components is not None and self.variances is not None
        self._lm_mean, self._a = self._landmark_basis(self.mean, self.components)

    # -- decoding -----------------------------------------------------------------------
    def decode(self, neutral_mesh: np.ndarray, neutral_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        self.check_decode_inputs(neutral_mesh, neutral_landmarks, landmarks)
        assert self.mean is not None and self.components is not None and self.variances is not None
        b, t, l, _ = landmarks.shape
        v = self.topology.num_vertices  # type: ignore[union-attr]
        rhs = (np.asarray(landmarks, np.float64).reshape(b * t, l * 3) - self._lm_mean).T
        c = self._solve(self._a, self.variances, self.lam, rhs)
        return (self.mean + c.T @ self.components).reshape(b, t, v, 3).astype(np.float32)

    # -- persistence --------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.mean is not None and self.components is not None and self.variances is not None
        return {"mean": torch.from_numpy(self.mean.astype(np.float64)),
                "components": torch.from_numpy(np.ascontiguousarray(self.components, dtype=np.float64)),
                "variances": torch.from_numpy(self.variances.astype(np.float64))}

    def state_meta(self) -> dict[str, Any]:
        return {"lambda": self.lam}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.mean = tensors["mean"].numpy()
        self.components = tensors["components"].numpy()
        self.variances = tensors["variances"].numpy()
        self.lam = float(meta["lambda"])
        self._prepare()
