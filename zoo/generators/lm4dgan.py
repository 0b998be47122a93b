"""``lm4dgan``: a landmark-guided conditional Wasserstein GAN over whole sequences (LM-4DGAN-style).

No public code of LM-4DGAN exists; this follows its description in FC-4DFS §2 and §4.2: a
conditional WGAN with gradient penalty (Gulrajani et al. 2017, lambda = 10, ``n_critic`` critic
steps per generator step) whose generator maps (noise, expression label, neutral landmarks) to the
whole landmark displacement sequence of a fixed training length with temporal convolutions, and
whose critic judges whole displacement sequences together with the label and neutral landmarks.

Limitation (the one FC-4DFS criticises): the generator only knows its training length
(``train_length`` frames, whole expression). Any other length is the same motion linearly resampled
in time, so neither frame rate nor duration changes the generated dynamics.

During training the history logs ``nn_l1_mm``: for a fixed set of training conditions, the mean
absolute landmark-displacement difference (mm) between a generated sequence and the nearest real
training sequence of the same label — a sample-quality figure that falls as the GAN learns.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence as Seq

import numpy as np
import torch
from torch import nn

from fc4dfs.datasets.base import Dataset, resample_frames
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.plugins.contracts import Budget, Generator
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.generators.diffusion.data import SequenceBank
from fc4dfs.zoo.normalise import Normaliser
from fc4dfs.zoo.training import TrainLoop, seed_everything

_ARCH_KEYS = ("channels", "z_dim", "cond_dim")


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     mix: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """WGAN-GP term ``weight * E[(||grad_x D(x_hat)||_2 - 1)^2]`` on ``x_hat = mix real + (1 - mix) fake``.

    ``mix`` is ``[B]`` in [0, 1]; ``critic`` maps ``[B, ...]`` to ``[B]``. The graph is kept so the
    penalty trains the critic.
    """
    shape = (-1,) + (1,) * (real.ndim - 1)
    x_hat = (mix.view(shape) * real + (1.0 - mix.view(shape)) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


class _Condition(nn.Module):
    """Label embedding + MLP code of the normalised neutral landmarks."""

    def __init__(self, num_labels: int, feature_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.label = nn.Embedding(num_labels, cond_dim)
        self.neutral = nn.Sequential(nn.Linear(feature_dim, cond_dim), nn.LeakyReLU(0.2), nn.Linear(cond_dim, cond_dim))

    def forward(self, neutral: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.label(labels), self.neutral(neutral)], dim=-1)  # [B, 2 cond_dim]


class SequenceGenerator(nn.Module):
    """(z, label, neutral) -> displacement sequence ``[B, length, D]`` with a zero first frame."""

    def __init__(self, num_labels: int, feature_dim: int, length: int, channels: int, z_dim: int,
                 cond_dim: int) -> None:
        super().__init__()
        self.length, self.channels, self.z_dim = length, channels, z_dim
        self.base = math.ceil(length / 4)
        self.cond = _Condition(num_labels, feature_dim, cond_dim)
        c = 2 * cond_dim
        self.project = nn.Linear(z_dim + c, channels * self.base)
        self.blocks = nn.ModuleList([nn.Conv1d(channels + c, channels, 5, padding=2) for _ in range(2)])
        self.refine = nn.Conv1d(channels + c, channels, 5, padding=2)
        self.out = nn.Conv1d(channels, feature_dim, 5, padding=2)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, z: torch.Tensor, neutral: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cond = self.cond(neutral, labels)
        h = self.act(self.project(torch.cat([z, cond], -1))).view(-1, self.channels, self.base)
        for block in self.blocks:  # two temporal x2 upsamplings: base -> 4 base >= length
            h = nn.functional.interpolate(h, scale_factor=2, mode="linear", align_corners=False)
            h = self.act(block(torch.cat([h, cond.unsqueeze(-1).expand(-1, -1, h.shape[-1])], 1)))
        h = self.act(self.refine(torch.cat([h, cond.unsqueeze(-1).expand(-1, -1, h.shape[-1])], 1)))
        disp = self.out(h)[:, :, : self.length].transpose(1, 2)  # [B, F, D]
        return disp - disp[:, :1]


class SequenceCritic(nn.Module):
    """Scores a displacement sequence ``[B, F, D]`` given label and neutral (projection conditioning)."""

    def __init__(self, num_labels: int, feature_dim: int, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.cond = _Condition(num_labels, feature_dim, cond_dim)
        c = 2 * cond_dim
        act = nn.LeakyReLU(0.2)
        self.features = nn.Sequential(
            nn.Conv1d(feature_dim + c, channels, 5, padding=2), act,
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), act,
            nn.Conv1d(channels, 2 * channels, 5, stride=2, padding=2), act,
        )
        self.score = nn.Linear(2 * channels, 1)
        self.project = nn.Linear(c, 2 * channels)

    def forward(self, disp: torch.Tensor, neutral: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cond = self.cond(neutral, labels)
        x = torch.cat([disp.transpose(1, 2), cond.unsqueeze(-1).expand(-1, -1, disp.shape[1])], 1)
        h = self.features(x).mean(-1)
        return self.score(h).squeeze(-1) + (self.project(cond) * h).sum(-1)


class LM4DGANGenerator(Generator):
    """Conditional WGAN-GP producing whole landmark sequences of one fixed length."""

    name: ClassVar[str] = "lm4dgan"
    version: ClassVar[str] = "3"
    description: ClassVar[str] = "Landmark-guided conditional WGAN-GP over whole sequences (LM-4DGAN-style)"
    stochastic: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "train_length": 30,  # frames the generator produces; other lengths are resampled
        "gp_weight": 10.0,
        "n_critic": 5,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"channels": 32, "z_dim": 8, "cond_dim": 16, "iterations": 20, "batch": 16,
                  "lr": 5e-4, "block": 10, "eval_conditions": 8},
        "quick": {"channels": 64, "z_dim": 32, "cond_dim": 48, "iterations": 300, "batch": 32,
                  "lr": 2e-4, "block": 50, "eval_conditions": 32},
        "paper": {"channels": 256, "z_dim": 64, "cond_dim": 128, "iterations": 20_000, "batch": 64,
                  "lr": 1e-4, "block": 500, "eval_conditions": 64},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if int(self.options["train_length"]) < 2:
            raise ComponentError(f"lm4dgan option train_length must be >= 2, got {self.options['train_length']!r}")
        if int(self.options["n_critic"]) < 1:
            raise ComponentError(f"lm4dgan option n_critic must be >= 1, got {self.options['n_critic']!r}")
        self.generator: SequenceGenerator | None = None
        self.critic: SequenceCritic | None = None
        self.norm: Normaliser | None = None
        self.device = torch.device("cpu")
        self._meta: dict[str, Any] = {}

    def _build(self, meta: dict[str, Any]) -> None:
        a = meta["arch"]
        n, d, length = int(meta["num_labels"]), int(meta["feature_dim"]), int(self.options["train_length"])
        self.generator = SequenceGenerator(n, d, length, a["channels"], a["z_dim"], a["cond_dim"]).to(self.device)
        self.critic = SequenceCritic(n, d, a["channels"], a["cond_dim"]).to(self.device)
        self._meta = meta

    # -- training -------------------------------------------------------------------------
    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """WGAN-GP training: ``n_critic`` critic steps (Adam, beta = (0.5, 0.9)) per generator step."""
        hp = budget.pick(self.budgets)
        start = time.monotonic()
        self.device = torch.device(device)
        length = int(self.options["train_length"])
        bank = SequenceBank(data)
        neutrals = np.stack([s[0] for s in bank.seqs])
        disps = np.stack([resample_frames(s - s[:1], length) for s in bank.seqs])  # [N, F, D]
        self.norm = Normaliser().fit_standardise("neutral", neutrals).add("disp", std=float(disps.std()) or 1.0)
        real_disp = torch.as_tensor(self.norm.encode("disp", disps), device=self.device)
        real_neutral = torch.as_tensor(self.norm.encode("neutral", neutrals), device=self.device)
        real_labels = torch.as_tensor(bank.label_ids, device=self.device)
        meta = {"arch": {k: int(hp[k]) for k in _ARCH_KEYS}, "num_labels": len(bank.labels),
                "feature_dim": bank.feature_dim}
        seed_everything(seed)
        self._build(meta)
        assert self.generator is not None and self.critic is not None
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=float(hp["lr"]), betas=(0.5, 0.9))
        d_opt = torch.optim.Adam(self.critic.parameters(), lr=float(hp["lr"]), betas=(0.5, 0.9))
        batch, block, n_critic = int(hp["batch"]), int(hp["block"]), int(self.options["n_critic"])
        gp_weight, z_dim = float(self.options["gp_weight"]), int(hp["z_dim"])
        eval_idx = np.random.default_rng(seed).permutation(len(bank))[: int(hp["eval_conditions"])]

        def epoch_fn(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            self.generator.train()
            self.critic.train()
            w_sum = gp_sum = g_sum = 0.0
            for _ in range(block):
                for _ in range(n_critic):
                    idx = torch.as_tensor(rng.integers(0, len(bank), size=batch), device=self.device)
                    neu, lab, real = real_neutral[idx], real_labels[idx], real_disp[idx]
                    with torch.no_grad():
                        fake = self.generator(torch.randn(batch, z_dim).to(self.device), neu, lab)
                    w = self.critic(real, neu, lab).mean() - self.critic(fake, neu, lab).mean()
                    gp = gradient_penalty(lambda x: self.critic(x, neu, lab), real, fake,
                                          torch.rand(batch).to(self.device), gp_weight)
                    d_opt.zero_grad(set_to_none=True)
                    (gp - w).backward()
                    d_opt.step()
                    w_sum += w.item() / n_critic
                    gp_sum += gp.item() / n_critic
                idx = torch.as_tensor(rng.integers(0, len(bank), size=batch), device=self.device)
                neu, lab = real_neutral[idx], real_labels[idx]
                g_loss = -self.critic(self.generator(torch.randn(batch, z_dim).to(self.device), neu, lab), neu, lab).mean()
                g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                g_opt.step()
                g_sum += g_loss.item()
            return {"w_dist": w_sum / block, "gp": gp_sum / block, "g_loss": g_sum / block,
                    "nn_l1_mm": self._nearest_real_l1(real_disp, real_neutral, real_labels, eval_idx, seed)}

        loop = TrainLoop("lm4dgan", {"generator": self.generator, "critic": self.critic, "g_opt": g_opt,
                                     "d_opt": d_opt},
                         math.ceil(int(hp["iterations"]) / block), seed,
                         stable_hash({"config": self.config, "hp": hp, "seed": seed, "data": data.fingerprint}),
                         workdir, progress)
        history = loop.run(epoch_fn)
        self.generator.eval()
        self.critic.eval()
        self.topology = data.topology
        self.labels = list(bank.labels)
        self.train_report = {
            "budget": budget.name, "seconds": round(time.monotonic() - start, 2),
            "iterations": loop.epochs * block, "train_length": length,
            **loop.report(nn_l1_mm=[round(h["nn_l1_mm"], 4) for h in history]),
        }
        return self.train_report

    @torch.no_grad()
    def _nearest_real_l1(self, real_disp: torch.Tensor, real_neutral: torch.Tensor, real_labels: torch.Tensor,
                         eval_idx: np.ndarray, seed: int) -> float:
        """Mean over fixed conditions of the L1 (mm) to the nearest real same-label displacement sequence."""
        assert self.generator is not None
        self.generator.eval()
        idx = torch.as_tensor(eval_idx, device=self.device)
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(len(eval_idx), self.generator.z_dim, generator=gen).to(self.device)
        fake = self.generator(z, real_neutral[idx], real_labels[idx])
        assert self.norm is not None
        dist = (fake.unsqueeze(1) - real_disp.unsqueeze(0)).abs().mean((2, 3)) * float(self.norm.stat("disp_std"))  # [E, N]
        same = real_labels[idx].unsqueeze(1) == real_labels.unsqueeze(0)
        dist = torch.where(same, dist, torch.full_like(dist, float("inf")))
        self.generator.train()
        return float(dist.min(1).values.mean())

    # -- persistence ------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.generator is not None and self.critic is not None and self.norm is not None
        return {**prefixed("gen", self.generator.state_dict()), **prefixed("critic", self.critic.state_dict()),
                **prefixed("norm", self.norm.state_dict())}

    def state_meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.device = torch.device(device)
        self._build(meta)
        assert self.generator is not None and self.critic is not None
        self.generator.load_state_dict(unprefixed("gen", tensors))
        self.critic.load_state_dict(unprefixed("critic", tensors))
        self.generator.eval()
        self.critic.eval()
        self.norm = Normaliser.from_state(unprefixed("norm", tensors))

    # -- generation -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """Neutral + generated displacements; lengths other than ``train_length`` are resampled in time.

        ``fps`` is ignored (see the module docstring). ``seed=None`` means seed 0.
        """
        self.check_generate_inputs(neutral_landmarks, labels, length)
        assert self.generator is not None and self.norm is not None
        b, n_lm = neutral_landmarks.shape[:2]
        neutral = np.asarray(neutral_landmarks, dtype=np.float32)
        ids = torch.as_tensor(self.label_ids(labels), device=self.device)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        z = torch.randn(b, self.generator.z_dim, generator=gen).to(self.device)
        code = torch.as_tensor(self.norm.encode("neutral", neutral.reshape(b, -1)), device=self.device)
        disp = self.norm.decode("disp", self.generator(z, code, ids).cpu().numpy())  # [B, F_train, D]
        disp = np.stack([resample_frames(d, int(length)) for d in disp])
        out = neutral[:, None] + disp.reshape(b, int(length), n_lm, 3)
        return out.astype(np.float32)
