"""Sparse2Dense (Otberdout et al., CVPR 2022), as FC-4DFS and Zou et al. use it as a baseline.

Landmark displacement ``Delta L_t = L_t - L_0`` -> linear layer -> spiral decoder with up-sampling
(Neural3DMM's decoder, filters [128, 64, 32, 32, 16] -> 3) -> per-vertex displacement
``Delta M_t`` added to the neutral mesh: ``M_t = M_0 + Delta M_t``. Trained with an L1 loss on the
displacements (optionally weighted per vertex by how much it moves, ``loss_weights="motion"``).
The neutral mesh enters only through the addition — the identity-blindness FC-4DFS improves on.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from fc4dfs.zoo.decoders.common import HIERARCHY_DEFAULTS, PAPER, SpiralGenerator, SpiralMeshDecoder
from fc4dfs.zoo.mesh.hierarchy import MeshHierarchy


class S2DNet(nn.Module):
    """``Delta L`` (flattened) -> :class:`SpiralGenerator` -> normalised ``Delta M``."""

    def __init__(self, hierarchy: MeshHierarchy, num_landmarks: int, filters: list[int]) -> None:
        super().__init__()
        self.generator = SpiralGenerator(hierarchy, num_landmarks * 3, filters)

    def forward(self, dl: torch.Tensor, l0: torch.Tensor, m0: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        return self.generator(dl.reshape(dl.shape[0], -1))


class S2DDecoder(SpiralMeshDecoder):
    """Sparse2Dense landmark-to-mesh displacement decoder."""

    name: ClassVar[str] = "s2d"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = ("Sparse2Dense: landmark displacements -> linear layer -> spiral decoder -> "
                                  "per-vertex displacements added to the neutral mesh (Otberdout et al. 2022)")
    output: ClassVar[str] = "displacement"
    defaults: ClassVar[dict[str, Any]] = {
        "filters": [128, 64, 32, 32, 16],
        "loss_weights": "uniform",
        **HIERARCHY_DEFAULTS,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "lr_decay": 0.99, "weight_decay": 5e-5,
                  "max_frames": 128},
        "quick": {"epochs": 5, "batch_size": 16, "lr": 2e-3, "lr_decay": 0.9, "weight_decay": 5e-5,
                  "max_frames": 800},
        "paper": {**PAPER, "batch_size": 16, "weight_decay": 5e-5},
    }

    def arch(self, fs) -> dict[str, Any]:
        return {**super().arch(fs), "filters": [int(f) for f in self.options["filters"]]}

    def build_network(self, hierarchy: MeshHierarchy, arch: dict[str, Any]) -> nn.Module:
        return S2DNet(hierarchy, arch["num_landmarks"], arch["filters"])
