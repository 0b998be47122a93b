"""``actor``: the transformer conditional VAE of ACTOR (Petrovich et al., ICCV 2021), on landmarks.

Encoder: the frames (per-frame landmark displacements from the neutral, linearly embedded, plus a
sinusoidal encoding of the frame index) are preceded by two learnable *distribution tokens* of the
sequence's label, ``mu_token[a]`` and ``sigma_token[a]``; a transformer encoder reads all of them
and its outputs at the two token positions are the posterior's mean and log-variance.

Decoder: the latent plus a learnable per-label bias, ``z + b_a``, is the memory of a transformer
decoder whose queries are the sinusoidal encodings of the frame indices 0..T-1, one per output
frame, so the number of queries sets the duration and any length can be generated.

Loss: ``L_rec + lambda_KL * KL(q(z|x, a) || N(0, I))`` with ``lambda_KL = 1e-5`` as published.
ACTOR's SMPL vertex loss has no counterpart on landmarks; the reconstruction term is the MSE of
the displacements. Generation samples ``z ~ N(0, I)``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from fc4dfs.plugins.contracts import ComponentError
from fc4dfs.zoo.generators.common import positional_encoding
from fc4dfs.zoo.generators.cvae import CVAEGenerator, SequenceCVAE, gaussian_kl, masked_mse, reparameterise


class ActorNet(SequenceCVAE):
    """Transformer CVAE with per-label distribution tokens; latent size = ``d_model``."""

    def __init__(self, feature_dim: int, num_labels: int, d_model: int, layers: int, heads: int, ff: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.d_model = d_model
        self.mu_token = nn.Parameter(torch.randn(num_labels, d_model))
        self.sigma_token = nn.Parameter(torch.randn(num_labels, d_model))
        self.label_bias = nn.Parameter(torch.randn(num_labels, d_model))
        self.embed = nn.Linear(feature_dim, d_model)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, heads, ff, dropout, activation="gelu", batch_first=True), layers,
            enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d_model, heads, ff, dropout, activation="gelu", batch_first=True), layers)
        self.out = nn.Linear(d_model, feature_dim)

    def time_queries(self, steps: int) -> torch.Tensor:
        """Sinusoidal encodings of the frame indices 0..steps-1: ``[steps, d_model]``."""
        return positional_encoding(torch.arange(steps, dtype=torch.float32, device=self.out.weight.device),
                                   self.d_model)

    def encode(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)`` ``[B, d_model]`` of sequences ``[B, T, D]`` with real frames ``mask``."""
        frames = self.embed(x) + self.time_queries(x.shape[1])
        tokens = torch.cat([self.mu_token[labels, None], self.sigma_token[labels, None], frames], 1)
        pad = torch.cat([torch.zeros_like(mask[:, :2]), ~mask], 1)
        h = self.encoder(tokens, src_key_padding_mask=pad)
        return h[:, 0], h[:, 1]

    def decode(self, z: torch.Tensor, labels: torch.Tensor, steps: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Displacements ``[B, steps, D]`` (frame 0 zeros) from latents ``[B, d_model]``."""
        memory = (z + self.label_bias[labels]).unsqueeze(1)
        queries = self.time_queries(steps).expand(len(z), -1, -1)
        h = self.decoder(queries, memory, tgt_key_padding_mask=None if mask is None else ~mask)
        out = self.out(h)
        return torch.cat([torch.zeros_like(out[:, :1]), out[:, 1:]], 1)

    def loss_terms(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                   lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x, mask, labels)
        rec = masked_mse(self.decode(reparameterise(mu, logvar), labels, x.shape[1], mask), x, mask)
        return rec, gaussian_kl(mu, logvar).mean()

    def sample(self, labels: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn(len(labels), self.d_model, generator=gen).to(labels.device)
        return self.decode(z, labels, length)


class ActorGenerator(CVAEGenerator):
    """ACTOR: transformer conditional VAE with per-label distribution tokens (Petrovich et al. 2021)."""

    name: ClassVar[str] = "actor"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Transformer conditional VAE with per-label distribution tokens (ACTOR)"
    defaults: ClassVar[dict[str, Any]] = {**CVAEGenerator.common_defaults, "kl_weight": 1e-5}
    arch_keys: ClassVar[tuple[str, ...]] = ("d_model", "layers", "heads", "ff")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"d_model": 32, "layers": 1, "heads": 2, "ff": 64, "epochs": 6, "lr": 1e-3, "batch_size": 32,
                  "clip": 1.0, "one_length_per_epoch": True},
        "quick": {"d_model": 64, "layers": 2, "heads": 4, "ff": 128, "epochs": 120, "lr": 5e-4, "batch_size": 32,
                  "clip": 1.0, "one_length_per_epoch": True},
        # ACTOR's published settings: latent/model size 256, 8 layers, 4 heads, feed-forward 1024, Adam lr 1e-4
        "paper": {"d_model": 256, "layers": 8, "heads": 4, "ff": 1024, "epochs": 2000, "lr": 1e-4, "batch_size": 20,
                  "clip": 0.0, "one_length_per_epoch": False},
    }

    def build_model(self, feature_dim: int, num_labels: int, arch: dict[str, int]) -> ActorNet:
        if arch["d_model"] % arch["heads"] or arch["d_model"] % 2:
            raise ComponentError(f"actor: d_model {arch['d_model']} must be even and divisible by heads {arch['heads']}")
        return ActorNet(feature_dim, num_labels, arch["d_model"], arch["layers"], arch["heads"], arch["ff"])
