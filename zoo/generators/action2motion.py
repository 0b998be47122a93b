"""``action2motion``: the GRU conditional VAE of Action2Motion (Guo et al., ACM MM 2020), on landmarks.

Every frame has its own latent. At step t, with ``c`` the one-hot label and ``phi_t = t / (T - 1)``
the time counter (the phase of the sequence), three GRU cells with their own states run:

    prior      p(z_t | x_<t)  :  GRU_p([x_{t-1}, c, phi_t])  -> (mu_p, logvar_p)
    posterior  q(z_t | x_<=t) :  GRU_q([x_t,     c, phi_t])  -> (mu_q, logvar_q)
    generator  x_t            :  GRU_g([x_{t-1}, z_t, c, phi_t]) -> linear head

Loss: ``sum_t ||x_t - x^_t||^2 + lambda_KL sum_t KL(q_t || p_t)``, averaged over real frames.
``x_{t-1}`` is the ground-truth frame with probability ``teacher_forcing`` per step and the model's own
output otherwise (the published training uses teacher forcing with a probability). Generation draws
``z_t`` from the learned prior and feeds back its own frames, for any length.

The body model's Lie-algebra pose parametrisation does not apply to faces: ``x_t`` are landmark
displacements from the neutral (in units of the training displacements' RMS), frame 0 is zero.
``kl_weight`` defaults to 1e-3, this module's choice (not a value restated from the paper).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fc4dfs.plugins.contracts import ComponentError
from fc4dfs.zoo.generators.cvae import CVAEGenerator, SequenceCVAE, gaussian_kl, reparameterise


class A2MNet(SequenceCVAE):
    """Prior, posterior and generator GRU cells with a per-frame latent of size ``z_dim``."""

    def __init__(self, feature_dim: int, num_labels: int, hidden: int, z_dim: int, teacher_forcing: float) -> None:
        super().__init__()
        self.num_labels, self.z_dim, self.hidden = num_labels, z_dim, hidden
        self.teacher_forcing = teacher_forcing
        cond = num_labels + 1
        self.prior = nn.GRUCell(feature_dim + cond, hidden)
        self.posterior = nn.GRUCell(feature_dim + cond, hidden)
        self.generator = nn.GRUCell(feature_dim + z_dim + cond, hidden)
        self.prior_head = nn.Linear(hidden, 2 * z_dim)
        self.posterior_head = nn.Linear(hidden, 2 * z_dim)
        self.out = nn.Linear(hidden, feature_dim)

    def _cond(self, labels: torch.Tensor, lengths: torch.Tensor, t: int) -> torch.Tensor:
        phase = (t / (lengths.to(torch.float32) - 1.0).clamp_min(1.0)).unsqueeze(1)
        return torch.cat([F.one_hot(labels, self.num_labels).to(torch.float32), phase], 1)

    def loss_terms(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                   lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, steps, _ = x.shape
        h_p = h_q = h_g = x.new_zeros(b, self.hidden)
        prev = x[:, 0]
        rec = x.new_zeros(b, steps)
        kl = x.new_zeros(b, steps)
        for t in range(1, steps):
            c = self._cond(labels, lengths, t)
            h_p = self.prior(torch.cat([prev, c], 1), h_p)
            h_q = self.posterior(torch.cat([x[:, t], c], 1), h_q)
            mu_p, logvar_p = self.prior_head(h_p).chunk(2, -1)
            mu_q, logvar_q = self.posterior_head(h_q).chunk(2, -1)
            z = reparameterise(mu_q, logvar_q)
            h_g = self.generator(torch.cat([prev, z, c], 1), h_g)
            pred = self.out(h_g)
            rec[:, t] = ((pred - x[:, t]) ** 2).mean(-1)
            kl[:, t] = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
            prev = x[:, t] if float(torch.rand(())) < self.teacher_forcing else pred
        m = mask[:, 1:].to(x.dtype)
        n = m.sum().clamp_min(1.0)
        return (rec[:, 1:] * m).sum() / n, (kl[:, 1:] * m).sum() / n

    def sample(self, labels: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
        b = len(labels)
        lengths = torch.full((b,), length, device=labels.device)
        h_p = h_g = self.out.weight.new_zeros(b, self.hidden)
        prev = self.out.weight.new_zeros(b, self.out.out_features)
        frames = [prev]
        noise = torch.randn(length, b, self.z_dim, generator=gen).to(labels.device)
        for t in range(1, length):
            c = self._cond(labels, lengths, t)
            h_p = self.prior(torch.cat([prev, c], 1), h_p)
            mu_p, logvar_p = self.prior_head(h_p).chunk(2, -1)
            h_g = self.generator(torch.cat([prev, reparameterise(mu_p, logvar_p, noise[t]), c], 1), h_g)
            prev = self.out(h_g)
            frames.append(prev)
        return torch.stack(frames, 1)


class Action2MotionGenerator(CVAEGenerator):
    """Action2Motion: GRU conditional VAE with a per-frame latent and a learned prior (Guo et al. 2020)."""

    name: ClassVar[str] = "action2motion"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "GRU conditional VAE with per-frame latent and learned prior (Action2Motion)"
    defaults: ClassVar[dict[str, Any]] = {**CVAEGenerator.common_defaults, "kl_weight": 1e-3,
                                          "teacher_forcing": 0.6}
    arch_keys: ClassVar[tuple[str, ...]] = ("hidden", "z_dim")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"hidden": 32, "z_dim": 8, "epochs": 6, "lr": 2e-3, "batch_size": 32, "clip": 1.0,
                  "one_length_per_epoch": True},
        "quick": {"hidden": 128, "z_dim": 16, "epochs": 60, "lr": 2e-3, "batch_size": 32, "clip": 1.0,
                  "one_length_per_epoch": True},
        # the longest run; sizes are this module's choice, not values restated from the paper
        "paper": {"hidden": 128, "z_dim": 30, "epochs": 1000, "lr": 2e-4, "batch_size": 128, "clip": 0.0,
                  "one_length_per_epoch": False},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        tf = float(self.options["teacher_forcing"])
        if not 0.0 <= tf <= 1.0:
            raise ComponentError(f"action2motion: option teacher_forcing must lie in [0, 1], got {tf}")
        self.options["teacher_forcing"] = tf

    def build_model(self, feature_dim: int, num_labels: int, arch: dict[str, int]) -> A2MNet:
        return A2MNet(feature_dim, num_labels, arch["hidden"], arch["z_dim"], float(self.options["teacher_forcing"]))

