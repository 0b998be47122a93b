"""Neural3DMM (Bouritsas et al., ICCV 2019) used as a landmark decoder, as FC-4DFS Table 2 and
Zou et al. Table 5 compare it.

The spiral encoder (filters [3, 16, 32, 64, 128], a spiral convolution with ELU then a
down-sampling per level, a linear layer to a 16-d latent code) encodes the neutral mesh; the
spiral decoder (linear layer, then up-sampling + spiral convolution per level, filters
[128, 64, 32, 32, 16] -> 3) consumes that code concatenated with the landmark displacement
``Delta L_t`` and outputs the *whole* mesh, normalised per vertex by the training mean and standard
deviation as in the reference implementation (not a displacement). L1 loss.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from fc4dfs.zoo.decoders.common import HIERARCHY_DEFAULTS, PAPER, SpiralGenerator, SpiralMeshDecoder
from fc4dfs.zoo.mesh.hierarchy import MeshHierarchy
from fc4dfs.zoo.mesh.layers import Resample, SpiralConv


class N3DMMEncoder(nn.Module):
    """Spiral convolution + ELU + down-sampling at each level but the coarsest, then a linear layer."""

    def __init__(self, hierarchy: MeshHierarchy, filters: list[int], latent: int) -> None:
        super().__init__()
        n = hierarchy.num_levels
        f = [int(x) for x in filters]
        chans = [3] + f[1:n]  # the first entry names the input: xyz
        if len(chans) < n:
            chans = chans + [chans[-1]] * (n - len(chans))
        self.convs = nn.ModuleList(SpiralConv(chans[i], chans[i + 1], hierarchy.spirals[i]) for i in range(n - 1))
        self.down = nn.ModuleList(Resample(d) for d in hierarchy.down)
        self.fc = nn.Linear(hierarchy.sizes[-1] * chans[n - 1], latent)
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, down in zip(self.convs, self.down):
            x = down(self.act(conv(x)))
        return self.fc(x.reshape(x.shape[0], -1))


class N3DMMNet(nn.Module):
    """``[E(M_0), Delta L_t]`` -> spiral decoder -> normalised mesh."""

    def __init__(self, hierarchy: MeshHierarchy, num_landmarks: int, enc_filters: list[int],
                 dec_filters: list[int], latent: int) -> None:
        super().__init__()
        self.encoder = N3DMMEncoder(hierarchy, enc_filters, latent)
        self.decoder = SpiralGenerator(hierarchy, latent + num_landmarks * 3, dec_filters)

    def forward(self, dl: torch.Tensor, l0: torch.Tensor, m0: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        code = self.encoder(m0)[ident]
        return self.decoder(torch.cat([code, dl.reshape(dl.shape[0], -1)], dim=1))


class Neural3DMMDecoder(SpiralMeshDecoder):
    """Spiral-convolution mesh autoencoder whose decoder is driven by landmark displacements."""

    name: ClassVar[str] = "neural3dmm"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = ("Neural3DMM: spiral autoencoder; the decoder takes the neutral mesh's latent "
                                  "code concatenated with the landmark displacements and outputs the whole mesh")
    output: ClassVar[str] = "mesh"
    defaults: ClassVar[dict[str, Any]] = {
        "encoder_filters": [3, 16, 32, 64, 128],
        "filters": [128, 64, 32, 32, 16],
        "latent": 16,
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
        o = self.options
        return {**super().arch(fs), "encoder_filters": [int(f) for f in o["encoder_filters"]],
                "filters": [int(f) for f in o["filters"]], "latent": int(o["latent"])}

    def build_network(self, hierarchy: MeshHierarchy, arch: dict[str, Any]) -> nn.Module:
        return N3DMMNet(hierarchy, arch["num_landmarks"], arch["encoder_filters"], arch["filters"], arch["latent"])
