"""``motion3dgan``: landmark motions as square-root velocity functions on a hypersphere, generated
by a conditional WGAN-GP (Otberdout et al., "Sparse to dense dynamic 3D facial expression
generation", CVPR 2022 — Motion3DGAN — after MotionGAN, TPAMI 2022).

A landmark motion is the curve ``x: [0, 1] -> R^{3L}`` of displacements from the neutral. Its
square-root velocity function (SRVF; Srivastava et al., TPAMI 2011) is

    q(t) = x'(t) / sqrt(||x'(t)||)             (q = 0 where x' = 0)

whose squared L2 norm ``int ||q||^2 dt = int ||x'|| dt`` is the curve's length ``ell``; dividing by
``sqrt(ell)`` puts every motion on the unit hypersphere of L2([0, 1], R^{3L}). The inverse is the
integral ``x(t) = x(0) + int_0^t q(s) ||q(s)|| ds`` (with q rescaled by ``sqrt(ell)``). Because q is
a function of the curve parameter, any number of frames is obtained by resampling q and
integrating from the neutral landmarks: the representation is length-free.

The generator maps (noise, expression label) to a point of the sphere: its raw output is projected
onto the sphere (``q / ||q||_L2``), and it also emits ``log ell``: the sphere alone forgets the size
of the motion, which the published model takes from its training data; here it is generated with
the shape. The critic judges (q, log ell) with the label (projection conditioning); training is
WGAN-GP (Gulrajani et al. 2017, the penalty of :mod:`.lm4dgan`). As published, the condition is the
label only (no neutral landmarks, the limitation FC-4DFS points out in its introduction); ``fps`` is not used.

Discretisation: x at ``K + 1`` equally spaced parameter values gives q on the K interval
midpoints (finite differences), for which the round trip x -> q -> x is exact; resampling to
other lengths interpolates q linearly between midpoints, reprojects it onto the sphere and
integrates with the midpoint rule.

Why not ``fdasrsf`` or ``geomstats`` (both in the package index): the model needs only the three
maps above, in torch (the projection is inside the generator's graph), while ``fdasrsf`` works on
numpy curves one at a time with compiled extensions for elastic registration that is not used
here, and ``geomstats`` brings its own multi-backend layer for one norm and one division. The
formulas are tested in ``tests/generators/test_motion3dgan.py``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar, Sequence as Seq

import numpy as np
import torch
from torch import nn

from fc4dfs.datasets.base import Dataset, resample_frames
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.plugins.contracts import Budget, ComponentError, Generator
from fc4dfs.zoo.generators.diffusion.data import SequenceBank
from fc4dfs.zoo.generators.lm4dgan import gradient_penalty
from fc4dfs.zoo.normalise import Normaliser
from fc4dfs.zoo.training import TrainLoop, seed_everything

_EPS = 1e-12


# --------------------------------------------------------------------------- SRVF geometry
def l2_norm(q: torch.Tensor) -> torch.Tensor:
    """``||q||_L2 = sqrt(int_0^1 ||q(t)||^2 dt)`` of q on K interval midpoints ``[..., K, D]`` -> ``[...]``."""
    return (q.pow(2).sum(-1).mean(-1)).clamp_min(_EPS).sqrt()


def project_to_sphere(q: torch.Tensor) -> torch.Tensor:
    """``q / ||q||_L2``: the closest point of the unit hypersphere (``[..., K, D]``)."""
    return q / l2_norm(q)[..., None, None]


def srvf(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm SRVF and length of curves sampled at ``K + 1`` equally spaced parameters.

    ``x`` ``[..., K + 1, D]`` -> ``(q [..., K, D], ell [...])`` with ``||q||_L2 = 1`` and ``ell``
    the curve length (units of x). A constant curve has ``ell = 0`` and q = 0.
    """
    k = x.shape[-2] - 1
    if k < 1:
        raise ComponentError(f"an SRVF needs at least 2 samples of the curve, got {x.shape[-2]}")
    v = (x[..., 1:, :] - x[..., :-1, :]) * k
    q = v / v.norm(dim=-1, keepdim=True).clamp_min(_EPS).sqrt()
    ell = q.pow(2).sum(-1).mean(-1)
    return q / ell.clamp_min(_EPS).sqrt()[..., None, None], ell


def srvf_inverse(q: torch.Tensor, ell: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """The curve ``[..., K + 1, D]`` from ``start`` ``[..., D]`` with unit-norm SRVF q ``[..., K, D]``
    and length ell ``[...]``: ``x_{k+1} = x_k + q_k ||q_k|| ell / K``."""
    k = q.shape[-2]
    v = q * q.norm(dim=-1, keepdim=True) * ell[..., None, None]
    return torch.cat([start.unsqueeze(-2), start.unsqueeze(-2) + torch.cumsum(v, -2) / k], -2)


def resample_srvf(q: torch.Tensor, intervals: int) -> torch.Tensor:
    """q on ``K`` interval midpoints ``[..., K, D]`` -> on ``intervals`` midpoints, back on the sphere.

    Linear interpolation in the curve parameter between midpoints (constant beyond the first and
    last midpoint).
    """
    k = q.shape[-2]
    if intervals == k:
        return q
    t_new = (torch.arange(intervals, dtype=q.dtype, device=q.device) + 0.5) / intervals
    pos = (t_new * k - 0.5).clamp(0, k - 1)
    lo = pos.floor().long().clamp(max=k - 1)
    hi = (lo + 1).clamp(max=k - 1)
    w = (pos - lo.to(q.dtype)).unsqueeze(-1)
    return project_to_sphere(q[..., lo, :] * (1 - w) + q[..., hi, :] * w)


# --------------------------------------------------------------------------- networks
class SphereGenerator(nn.Module):
    """(z, label) -> (q on the unit sphere ``[B, K, D]``, standardised log-length ``[B]``)."""

    def __init__(self, num_labels: int, intervals: int, feature_dim: int, hidden: int, z_dim: int) -> None:
        super().__init__()
        self.intervals, self.feature_dim, self.z_dim = intervals, feature_dim, z_dim
        self.label = nn.Embedding(num_labels, hidden)
        act = nn.LeakyReLU(0.2)
        self.body = nn.Sequential(nn.Linear(z_dim + hidden, hidden), act, nn.Linear(hidden, hidden), act,
                                  nn.Linear(hidden, hidden), act)
        self.q_head = nn.Linear(hidden, intervals * feature_dim)
        self.len_head = nn.Linear(hidden, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(torch.cat([z, self.label(labels)], -1))
        q = self.q_head(h).view(-1, self.intervals, self.feature_dim)
        return project_to_sphere(q), self.len_head(h).squeeze(-1)


class SphereCritic(nn.Module):
    """Scores (normalised q ``[B, K, D]``, normalised log-length ``[B]``) given the label (projection)."""

    def __init__(self, num_labels: int, intervals: int, feature_dim: int, hidden: int) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.2)
        self.features = nn.Sequential(nn.Linear(intervals * feature_dim + 1, hidden), act,
                                      nn.Linear(hidden, hidden), act)
        self.score = nn.Linear(hidden, 1)
        self.label = nn.Embedding(num_labels, hidden)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.score(h).squeeze(-1) + (self.label(labels) * h).sum(-1)

    @staticmethod
    def pack(norm: Normaliser, q: torch.Tensor, log_len: torch.Tensor) -> torch.Tensor:
        """The critic's input ``[B, K D + 1]``: q ``[B, K, D]`` divided by its training standard deviation
        (field ``q``) beside the already normalised log-length ``[B]``."""
        return torch.cat([norm.encode("q", q).flatten(1), log_len.unsqueeze(-1)], -1)


_ARCH_KEYS = ("hidden", "z_dim")


class Motion3DGANGenerator(Generator):
    """Motion3DGAN: conditional WGAN-GP on the SRVF hypersphere, integrated from the neutral landmarks."""

    name: ClassVar[str] = "motion3dgan"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Conditional WGAN-GP on the SRVF hypersphere of landmark motions (Motion3DGAN)"
    stochastic: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "intervals": 32,  # K: the SRVF is learnt on K interval midpoints (training curves resampled to K + 1)
        "gp_weight": 10.0,
        "n_critic": 5,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"hidden": 64, "z_dim": 8, "iterations": 20, "batch": 16, "lr": 5e-4, "block": 10},
        "quick": {"hidden": 256, "z_dim": 32, "iterations": 500, "batch": 32, "lr": 2e-4, "block": 50},
        "paper": {"hidden": 512, "z_dim": 64, "iterations": 20_000, "batch": 64, "lr": 1e-4, "block": 500},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("intervals", "n_critic"):
            if int(self.options[key]) < 1:
                raise ComponentError(f"motion3dgan option {key} must be >= 1, got {self.options[key]!r}")
        self.generator: SphereGenerator | None = None
        self.critic: SphereCritic | None = None
        self.device = torch.device("cpu")
        self._meta: dict[str, Any] = {}
        #: field ``q`` (the SRVF's standard deviation) and ``loglen`` (mean and std of the log-lengths)
        self.norm: Normaliser | None = None

    def _build(self, meta: dict[str, Any]) -> None:
        a, k, d = meta["arch"], int(self.options["intervals"]), int(meta["feature_dim"])
        self.generator = SphereGenerator(int(meta["num_labels"]), k, d, a["hidden"], a["z_dim"]).to(self.device)
        self.critic = SphereCritic(int(meta["num_labels"]), k, d, a["hidden"]).to(self.device)
        self._meta = meta

    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """WGAN-GP: ``n_critic`` critic steps (Adam, beta = (0.5, 0.9)) per generator step."""
        hp = budget.pick(self.budgets)
        start = time.monotonic()
        self.device = torch.device(device)
        k = int(self.options["intervals"])
        bank = SequenceBank(data)
        curves = torch.as_tensor(np.stack([resample_frames(s - s[:1], k + 1) for s in bank.seqs]), dtype=torch.float64)
        q, ell = srvf(curves)
        log_len = torch.log(ell.clamp_min(1e-6))
        len_mean, len_std = float(log_len.mean()), float(log_len.std()) if len(log_len) > 1 else 1.0
        len_std = len_std if len_std > 1e-6 else 1.0
        norm = Normaliser().add("q", std=float(q.std()) or 1.0).add("loglen", mean=len_mean, std=len_std)
        self.norm = norm = norm.to(self.device)
        meta = {"arch": {key: int(hp[key]) for key in _ARCH_KEYS}, "num_labels": len(bank.labels),
                "feature_dim": bank.feature_dim}
        seed_everything(seed)
        self._build(meta)
        assert self.generator is not None and self.critic is not None
        gen_net, critic = self.generator, self.critic
        real_q = q.to(torch.float32).to(self.device)
        real_len = norm.encode("loglen", log_len.to(self.device)).to(torch.float32)
        real_labels = torch.as_tensor(bank.label_ids, device=self.device)
        g_opt = torch.optim.Adam(gen_net.parameters(), lr=float(hp["lr"]), betas=(0.5, 0.9))
        d_opt = torch.optim.Adam(critic.parameters(), lr=float(hp["lr"]), betas=(0.5, 0.9))
        batch, block, n_critic = int(hp["batch"]), int(hp["block"]), int(self.options["n_critic"])
        gp_weight, z_dim = float(self.options["gp_weight"]), int(hp["z_dim"])

        def epoch_fn(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            gen_net.train()
            critic.train()
            w_sum = gp_sum = g_sum = 0.0
            for _ in range(block):
                for _ in range(n_critic):
                    idx = torch.as_tensor(rng.integers(0, len(bank), size=batch), device=self.device)
                    lab = real_labels[idx]
                    real = critic.pack(norm, real_q[idx], real_len[idx])
                    with torch.no_grad():
                        fake = critic.pack(norm, *gen_net(torch.randn(batch, z_dim).to(self.device), lab))
                    w = critic(real, lab).mean() - critic(fake, lab).mean()
                    gp = gradient_penalty(lambda x: critic(x, lab), real, fake, torch.rand(batch).to(self.device),
                                          gp_weight)
                    d_opt.zero_grad(set_to_none=True)
                    (gp - w).backward()
                    d_opt.step()
                    w_sum += w.item() / n_critic
                    gp_sum += gp.item() / n_critic
                lab = real_labels[torch.as_tensor(rng.integers(0, len(bank), size=batch), device=self.device)]
                g_loss = -critic(critic.pack(norm, *gen_net(torch.randn(batch, z_dim).to(self.device), lab)), lab).mean()
                g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                g_opt.step()
                g_sum += g_loss.item()
            return {"w_dist": w_sum / block, "gp": gp_sum / block, "g_loss": g_sum / block}

        loop = TrainLoop(self.name, {"generator": gen_net, "critic": critic, "g_opt": g_opt, "d_opt": d_opt},
                         math.ceil(int(hp["iterations"]) / block), seed,
                         stable_hash({"config": self.config, "hp": hp, "seed": seed, "data": data.fingerprint}),
                         workdir, progress)
        loop.run(epoch_fn)
        gen_net.eval()
        critic.eval()
        self.topology = data.topology
        self.labels = list(bank.labels)
        self.train_report = {"budget": budget.name, "seconds": round(time.monotonic() - start, 2),
                             "iterations": loop.epochs * block, "intervals": k, **loop.report()}
        return self.train_report

    # -- persistence --------------------------------------------------------------------------
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
        self.norm = Normaliser.from_state(unprefixed("norm", tensors)).to(self.device)
        self.generator.eval()
        self.critic.eval()

    # -- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """Sample (q, ell), resample q to ``length - 1`` intervals and integrate from the neutral.

        ``fps`` is ignored (the SRVF is parametrised over the whole expression); ``seed=None`` means 0.
        """
        self.check_generate_inputs(neutral_landmarks, labels, length)
        assert self.generator is not None and self.norm is not None
        b = neutral_landmarks.shape[0]
        ids = torch.as_tensor(self.label_ids(labels), device=self.device)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        q, log_len = self.generator(torch.randn(b, self.generator.z_dim, generator=gen).to(self.device), ids)
        ell = torch.exp(self.norm.decode("loglen", log_len))
        q = resample_srvf(q.double(), int(length) - 1)
        start = torch.as_tensor(np.asarray(neutral_landmarks, dtype=np.float64).reshape(b, -1), device=self.device)
        x = srvf_inverse(q, ell.double(), start).cpu().numpy()
        return x.reshape(b, int(length), -1, 3).astype(np.float32)
