"""Training helpers: an exponential moving average of weights and a warm-up + cosine lr schedule.

Both are stateful objects with ``state_dict`` / ``load_state_dict`` so ``TrainLoop`` resumes them.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class EMA:
    """Exponential moving average of a module's parameters (Ho et al. sample from EMA weights)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module = module
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1.0 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, module: nn.Module) -> None:
        module.load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = {k: v.detach().clone() for k, v in state.items()}


def lr_lambda(total_steps: int, schedule: str, warmup: int = 100):
    """Multiplier of the base lr per optimiser step: ``constant`` (after warm-up) or ``cosine`` to 5 %."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"lr schedule must be 'constant' or 'cosine', got {schedule!r}")
    warmup = max(1, min(warmup, total_steps // 10 or 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
