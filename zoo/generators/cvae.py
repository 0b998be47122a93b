"""Shared parts of the conditional-VAE generators (``actor``, ``action2motion``).

- :func:`gaussian_kl`: the closed-form KL divergence between diagonal Gaussians (Kingma & Welling
  2014, App. B; against a learned prior as in Action2Motion, Guo et al. 2020);
- :class:`SequenceCVAE`: the network interface (reconstruction and KL terms of a padded batch;
  sampling from the prior);
- :class:`CVAEGenerator`: the Generator base that trains such a network on per-frame landmark
  displacements from the neutral (in units of the training displacements' RMS) with
  ``L = L_rec + kl_weight * L_KL`` through :class:`fc4dfs.zoo.training.TrainLoop`, and samples
  any length from the prior.

Both published models condition on the action label only: the generated displacements are added
to the given neutral landmarks, so frame 0 is the neutral exactly and the identity enters only
there.
"""
from __future__ import annotations

import math
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence as Seq

import numpy as np
import torch
from torch import nn

from fc4dfs.datasets.base import Dataset
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.plugins.contracts import Budget, ComponentError, Generator
from fc4dfs.zoo.generators.common import fit_sequence_normaliser, length_batches, one_length_each, prepare_sequences
from fc4dfs.zoo.normalise import Normaliser
from fc4dfs.zoo.training import TrainLoop, seed_everything


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor | None = None,
                logvar_p: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p))`` summed over the last (latent) axis.

    Diagonal Gaussians; the prior defaults to N(0, I). Shapes ``[..., Z]`` -> ``[...]`` (nats).
    """
    if mu_p is None:
        mu_p = torch.zeros_like(mu_q)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar_q)
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0).sum(-1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """``z = mu + e^(logvar / 2) * eps`` with ``eps`` ~ N(0, I) (or the given ``noise``)."""
    eps = torch.randn_like(mu) if noise is None else noise
    return mu + (0.5 * logvar).exp() * eps


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the real frames 1..T-1 (``mask`` ``[B, T]``) of ``[B, T, D]`` sequences."""
    m = mask[:, 1:].to(pred.dtype).unsqueeze(-1)
    return (((pred[:, 1:] - target[:, 1:]) ** 2) * m).sum() / (m.sum() * pred.shape[-1]).clamp_min(1.0)


class SequenceCVAE(nn.Module):
    """A conditional VAE over normalised displacement sequences ``[B, T, D]`` (frame 0 is zeros)."""

    @abstractmethod
    def loss_terms(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                   lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_rec, L_KL)`` of a padded batch: reconstruction MSE and KL per sequence (nats)."""

    @abstractmethod
    def sample(self, labels: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
        """Sequences of ``length`` frames drawn from the prior, noise from ``gen``: ``[B, length, D]``."""


class CVAEGenerator(Generator):
    """Generator base of the conditional VAEs: subclasses set the tables and :meth:`build_model`.

    Options shared by all: ``kl_weight`` (lambda_KL), ``train_lengths`` and ``include_native``
    (every training sequence resampled to these lengths, as the frame-by-frame generators do).
    Budget tables hold the architecture keys listed in ``arch_keys`` plus ``epochs``, ``lr``,
    ``batch_size``, ``clip`` and ``one_length_per_epoch``.
    """

    stochastic: ClassVar[bool] = True
    arch_keys: ClassVar[tuple[str, ...]] = ()
    common_defaults: ClassVar[dict[str, Any]] = {"train_lengths": [20, 25, 30], "include_native": True}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        w = float(self.options["kl_weight"])
        if not (w >= 0 and math.isfinite(w)):
            raise ComponentError(f"{self.name}: option kl_weight must be a finite number >= 0, got {w}")
        self.options["kl_weight"] = w
        lengths = [int(t) for t in self.options["train_lengths"]]
        if not lengths or min(lengths) < 2:
            raise ComponentError(f"{self.name}: option train_lengths must list lengths >= 2, got {lengths}")
        self.options["train_lengths"] = lengths
        self.model: SequenceCVAE | None = None
        self.norm: Normaliser | None = None
        self.device = torch.device("cpu")
        self._meta: dict[str, Any] = {}

    @abstractmethod
    def build_model(self, feature_dim: int, num_labels: int, arch: dict[str, int]) -> SequenceCVAE:
        """The untrained network for ``feature_dim = 3 L`` coordinates and ``num_labels`` labels."""

    def _build(self, meta: dict[str, Any]) -> None:
        self.norm = Normaliser().to(self.device)
        self.model = self.build_model(3 * int(meta["num_landmarks"]), int(meta["num_labels"]), meta["arch"]).to(self.device)
        self._meta = meta

    # -- training -----------------------------------------------------------------------------
    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """Minimise ``L_rec + kl_weight * L_KL`` with Adam on minibatches of similar length."""
        start = time.monotonic()
        hp = budget.pick(self.budgets)
        self.device = torch.device(device)
        labels = list(data.labels)
        seqs = prepare_sequences(data, labels, self.options["train_lengths"], self.options["include_native"])
        seed_everything(seed)
        self._build({"arch": {k: int(hp[k]) for k in self.arch_keys}, "num_labels": len(labels),
                     "num_landmarks": data.topology.num_landmarks})
        assert self.model is not None and self.norm is not None
        self.norm = fit_sequence_normaliser(Normaliser(), seqs, 0).to(self.device)
        model, scale = self.model, float(self.norm.stat("disp_std"))
        disp = torch.as_tensor(seqs.disp.reshape(len(seqs), seqs.disp.shape[1], -1) / scale, device=self.device)
        lengths = torch.as_tensor(seqs.lengths, device=self.device)
        label_ids = torch.as_tensor(seqs.label_ids, device=self.device)
        opt = torch.optim.Adam(model.parameters(), lr=float(hp["lr"]))
        kl_weight, clip = float(self.options["kl_weight"]), float(hp["clip"])

        def epoch_fn(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            model.train()
            subset = one_length_each(seqs.source, rng) if hp["one_length_per_epoch"] else None
            sums, n = np.zeros(2), 0
            for idx in length_batches(seqs.lengths, int(hp["batch_size"]), rng, subset):
                ix = torch.as_tensor(idx, device=self.device)
                t_max = int(lengths[ix].max())
                mask = torch.arange(t_max, device=self.device)[None] < lengths[ix, None]
                rec, kl = model.loss_terms(disp[ix, :t_max], mask, label_ids[ix], lengths[ix])
                opt.zero_grad(set_to_none=True)
                (rec + kl_weight * kl).backward()
                if clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                sums += (rec.item(), kl.item())
                n += 1
            return {"rec": sums[0] / n, "kl": sums[1] / n}

        loop = TrainLoop(self.name, {"model": model, "opt": opt}, int(hp["epochs"]), seed,
                         stable_hash({"config": self.config, "hp": hp, "seed": seed, "data": data.fingerprint}),
                         workdir, progress)
        loop.run(epoch_fn)
        model.eval()
        self.topology = data.topology
        self.labels = labels
        self.train_report = {"budget": budget.name, "seconds": round(time.monotonic() - start, 2),
                             "training_sequences": len(seqs), **loop.report()}
        return self.train_report

    # -- persistence --------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.model is not None and self.norm is not None
        return {**prefixed("model", self.model.state_dict()), **prefixed("norm", self.norm.state_dict())}

    def state_meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.device = torch.device(device)
        self._build(meta)
        assert self.model is not None and self.norm is not None
        self.model.load_state_dict(unprefixed("model", tensors))
        self.norm = Normaliser.from_state(unprefixed("norm", tensors)).to(self.device)
        self.model.eval()

    # -- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """The neutral plus displacements sampled from the prior; ``fps`` is not used (the published
        models know no frame rate); ``seed=None`` means seed 0."""
        self.check_generate_inputs(neutral_landmarks, labels, length)
        assert self.model is not None and self.norm is not None
        ids = torch.as_tensor(self.label_ids(labels), device=self.device)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        disp = self.norm.decode("disp", self.model.sample(ids, int(length), gen).unflatten(-1, (-1, 3))).cpu().numpy()
        out = np.asarray(neutral_landmarks, dtype=np.float32)[:, None] + disp
        out[:, 0] = neutral_landmarks
        return out.astype(np.float32)
