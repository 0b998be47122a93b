"""The one normaliser: statistics that map millimetre quantities to network units and back.

Every generator and decoder that normalises keeps one :class:`Normaliser` and saves it in its
checkpoint (its ``state_dict``, under the prefix ``norm``). A normaliser holds named *fields*; field
``f`` is the affine map, optionally followed by a whitened principal-component projection,

    encode:  z = ((x - f_mean) / f_std) @ f_basis / f_sd
    decode:  x = ((z * f_sd) @ f_basis.T) * f_std + f_mean

with ``x`` ``[..., D]`` (any shape ``f_mean`` and ``f_std`` broadcast against when there is no basis),
``f_basis`` ``[D, k]`` orthonormal columns (zero columns for directions the data do not span) and
``f_sd`` ``[k]`` the standard deviation along each column. Other fitted statistics a model needs
(loss weights, a mesh extent) are plain buffers added with :meth:`Normaliser.add_statistic`.
All statistics are float32 torch buffers, so ``state_dict`` / :meth:`Normaliser.from_state` save and
restore them and ``.to(device)`` moves them.

The statistics themselves are each paper's: a global RMS scale of displacements (FC-4DFS, Sec. 3.2),
per-coordinate standardisation with an optional PCA (DDPM landmark sequences), Neural3DMM's
per-vertex mean and standard deviation.
"""
from __future__ import annotations

from typing import Callable, Mapping, TypeVar

import numpy as np
import torch
from torch import nn

ArrayLike = np.ndarray | torch.Tensor | float
T = TypeVar("T", np.ndarray, torch.Tensor)

_PARTS = ("mean", "std", "basis", "sd")


def _tensor(value: ArrayLike) -> torch.Tensor:
    """A contiguous float32 copy (contiguous, so a restored checkpoint multiplies in the same order)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32, copy=True).contiguous()
    return torch.from_numpy(np.array(value, dtype=np.float32, order="C"))


def rms(x: np.ndarray) -> float:
    """Root mean square of all entries of ``x`` (in ``x``'s unit)."""
    return float(np.sqrt(np.mean(np.asarray(x) ** 2)))


class Normaliser(nn.Module):
    """Named affine (+ whitened PCA) maps between millimetres and network units; see the module doc."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []

    # -- building -------------------------------------------------------------------------------
    def add(self, field: str, mean: ArrayLike = 0.0, std: ArrayLike = 1.0,
            basis: ArrayLike | None = None, sd: ArrayLike | None = None) -> "Normaliser":
        """Set field ``field`` from given statistics (``basis`` ``[D, k]`` and ``sd`` ``[k]`` together).

        Raises ValueError when only one of ``basis`` / ``sd`` is given or ``field`` contains ``_``.
        """
        if (basis is None) != (sd is None):
            raise ValueError(f"field {field!r}: basis and sd go together")
        if "_" in field:
            raise ValueError(f"field name {field!r} must not contain '_'")
        for part, value in zip(_PARTS, (mean, std, basis, sd)):
            if value is not None:
                self._set(f"{field}_{part}", _tensor(value))
        if field not in self.fields:
            self.fields.append(field)
        return self

    def add_statistic(self, name: str, value: ArrayLike) -> "Normaliser":
        """Keep another fitted statistic (e.g. loss weights) as buffer ``name``."""
        self._set(name, _tensor(value))
        return self

    def fit_standardise(self, field: str, x: np.ndarray, components: int | None = None) -> "Normaliser":
        """Per-coordinate standardisation of ``x`` ``[N, D]``, then, with ``components``, a whitened PCA
        onto that many components (DDPM landmark frames). Standard deviations are floored at a tenth of
        their median (+1e-6) and component deviations at 1e-6, so constant coordinates stay finite."""
        mean = x.mean(0)
        std = x.std(0)
        std = np.maximum(std, 0.1 * float(np.median(std)) + 1e-6)
        basis = sd = None
        if components:
            z = (x - mean) / std
            _, sv, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
            k = int(min(components, len(sv)))
            basis = vt[:k].T
            sd = np.maximum(sv[:k] / np.sqrt(len(z)), 1e-6)
        return self.add(field, mean, std, basis, sd)

    def fit_pca(self, field: str, x: np.ndarray, components: int) -> "Normaliser":
        """Centring and a whitened PCA of ``x`` ``[N, D]`` onto ``components`` columns (no per-coordinate
        scaling; the generators' identity code). Directions the data do not span (deviation below 1e-6 of
        the largest) keep a zero column and unit deviation, so they encode to 0."""
        mean = x.mean(0)
        centred = (x - mean).astype(np.float64)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        sd_all = sv / np.sqrt(len(centred))
        k = min(int(components), int((sd_all > 1e-6 * max(sd_all.max(initial=0.0), 1e-12)).sum()))
        basis = np.zeros((x.shape[1], int(components)), dtype=np.float32)
        sd = np.ones(int(components), dtype=np.float32)
        basis[:, :k] = vt[:k].T
        sd[:k] = sd_all[:k]
        return self.add(field, mean, 1.0, basis, sd)

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor]) -> "Normaliser":
        """The normaliser whose ``state_dict()`` was ``tensors`` (fields are the ``*_mean`` keys)."""
        norm = cls()
        for name, value in tensors.items():
            norm._set(name, _tensor(value))
        norm.fields = [k[: -len("_mean")] for k in tensors if k.endswith("_mean")]
        return norm

    def _set(self, name: str, value: torch.Tensor) -> None:
        if name in self._buffers:
            self._buffers[name] = value.to(self._buffers[name].device)  # type: ignore[union-attr]
        else:
            self.register_buffer(name, value)

    # -- mapping --------------------------------------------------------------------------------
    def stat(self, name: str) -> torch.Tensor:
        """Buffer ``name`` (e.g. ``"disp_std"``); KeyError naming the known ones when absent."""
        if name not in self._buffers:
            raise KeyError(f"normaliser has no statistic {name!r} (has {sorted(self._buffers)})")
        return self._buffers[name]  # type: ignore[return-value]

    def dim(self, field: str) -> int:
        """Width of the encoded ``field``: the number of components, or ``D`` without a basis."""
        basis = self._buffers.get(f"{field}_basis")
        return int(basis.shape[1] if basis is not None else self.stat(f"{field}_mean").shape[-1])

    def encode(self, field: str, x: T) -> T:
        """``x`` in millimetres -> network units (``[..., D]`` -> ``[..., k]`` with a basis); a float32
        numpy array for a numpy ``x``."""
        if isinstance(x, np.ndarray):
            return self._numpy(self.encode, field, x)
        z = (x - self.stat(f"{field}_mean")) / self.stat(f"{field}_std")
        basis = self._buffers.get(f"{field}_basis")
        return z if basis is None else (z @ basis) / self.stat(f"{field}_sd")

    def decode(self, field: str, z: T) -> T:
        """Network units -> millimetres, the inverse of :meth:`encode` on the component span."""
        if isinstance(z, np.ndarray):
            return self._numpy(self.decode, field, z)
        basis = self._buffers.get(f"{field}_basis")
        if basis is not None:
            z = (z * self.stat(f"{field}_sd")) @ basis.T
        return z * self.stat(f"{field}_std") + self.stat(f"{field}_mean")

    def residual(self, field: str, x: T) -> T:
        """``x - decode(encode(x))``: the part of ``x`` outside the component span (zero without a basis)."""
        return x - self.decode(field, self.encode(field, x))

    def _numpy(self, fn: Callable[[str, torch.Tensor], torch.Tensor], field: str, x: np.ndarray) -> np.ndarray:
        device = self.stat(f"{field}_mean").device
        with torch.no_grad():
            out = fn(field, torch.as_tensor(np.asarray(x, dtype=np.float32), device=device))
        return out.cpu().numpy()
