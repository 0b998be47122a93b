"""The MLP baseline of FC-4DFS Table 3: each frame regressed independently.

Frame t's displacement from the neutral is an MLP of the neutral landmarks, the label and the
frame's relative position in the sequence, encoded as in FC-4DFS Eq. 5-6. All frames are
computed in parallel; frame 0 is the neutral.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.generators.common import (DisplacementGenerator, SequenceModel, positional_encoding,
                                          relative_positions)


class FrameMLP(SequenceModel):
    """``[neutral, label, PE(p~_t)] -> displacement_t`` with ``depth`` hidden layers."""

    def __init__(self, num_landmarks: int, num_labels: int, identity_dims: int, hidden: int, depth: int,
                 pe_dim: int, pe_base: float) -> None:
        super().__init__()
        d = 3 * num_landmarks
        self.num_labels = num_labels
        self.pe_dim, self.pe_base = pe_dim, pe_base
        # the first layer is split so the per-sequence part is computed once, not per frame
        self.first_cond = nn.Linear(identity_dims + num_labels, hidden)
        self.first_pos = nn.Linear(pe_dim, hidden, bias=False)
        self.body = nn.Sequential(*[m for _ in range(depth - 1) for m in (nn.Linear(hidden, hidden), nn.SiLU())])
        self.head = nn.Linear(hidden, d)

    def forward(self, neutral_n: torch.Tensor, label_ids: torch.Tensor, lengths: torch.Tensor,
                fps: torch.Tensor, steps: int) -> torch.Tensor:
        onehot = F.one_hot(label_ids, self.num_labels).to(neutral_n.dtype)
        cond = self.first_cond(torch.cat([neutral_n, onehot], dim=1))  # [B, H]
        pe = positional_encoding(relative_positions(lengths, fps, steps), self.pe_dim, self.pe_base).to(cond.dtype)
        h = F.silu(cond.unsqueeze(1) + self.first_pos(pe))  # [B, T, H]
        out = self.head(self.body(h))
        return torch.cat([torch.zeros_like(out[:, :1]), out[:, 1:]], dim=1)


class MLPGenerator(DisplacementGenerator):
    """MLP baseline: regresses each frame from neutral landmarks, label and position (FC-4DFS)."""

    name: ClassVar[str] = "mlp"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "MLP baseline: regresses each frame from neutral landmarks, label and position (FC-4DFS)"
    defaults: ClassVar[dict[str, Any]] = {
        **DisplacementGenerator.common_defaults,
        "hidden": 128,
        "depth": 3,
        "pe_dim": 32,
        "pe_base": 10000.0,
    }

    # the per-frame regression tolerates (and at the quick budget needs) a larger step than the LSTMs
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        **DisplacementGenerator.budgets,
        "quick": {**DisplacementGenerator.budgets["quick"], "lr": 1e-2},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if int(self.options["hidden"]) < 1 or int(self.options["depth"]) < 1:
            raise ComponentError(f"mlp: hidden and depth must be positive, got {self.options['hidden']}, "
                                 f"{self.options['depth']}")
        if int(self.options["pe_dim"]) < 2 or int(self.options["pe_dim"]) % 2:
            raise ComponentError(f"mlp: pe_dim must be even and >= 2, got {self.options['pe_dim']}")

    def build_model(self, num_landmarks: int, num_labels: int) -> FrameMLP:
        o = self.options
        return FrameMLP(num_landmarks, num_labels, self.identity_dims, int(o["hidden"]), int(o["depth"]), int(o["pe_dim"]),
                        float(o["pe_base"]))
