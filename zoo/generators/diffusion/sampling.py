"""Reverse-process samplers for the downstream tasks of Zou et al. (App. C, Alg. 1-4).

One reverse pass handles every task: label or text control (guidance, nothing known), expression filling
(known frames re-noised to the current step, Alg. 3) and geometry-adaptive generation (filling
with label guidance, repeated with harmonisation, Alg. 4). Steps are either the paper's ancestral
DDPM steps (``T`` of them) or DDIM strides (Song et al.), chosen by ``SamplerConfig.sampler``.
All randomness comes from the ``torch.Generator`` passed in, never from the global RNG.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from fc4dfs.zoo.generators.diffusion.schedule import NoiseSchedule, ddim_timesteps

SAMPLERS = ("ddim", "ddpm")


@dataclass(frozen=True)
class SamplerConfig:
    """How to run the reverse process."""

    sampler: str = "ddim"
    sampling_steps: int = 50
    eta: float = 0.0
    #: lambda of Eq. 9's log-objective (weight of the fluency term log p_theta(x | x_t))
    guidance_lambda: float = 0.01
    #: Adagrad steps per reverse step (paper: 3)
    guidance_steps: int = 3
    #: Adagrad learning rate, in units of the step's noise std (see ``guide``)
    guidance_lr: float = 1.0
    #: clip the x_0 prediction to [-clip_x0, clip_x0] (normalised units); None = never
    clip_x0: float | None = None
    #: low-pass every x_0 prediction over frames with a Gaussian of this std (frames); 0 = never
    smooth_x0: float = 0.0
    #: reconstruction guidance weight w_r for known frames (Ho et al. 2022); 0 = pure replacement (Alg. 3)
    recon_weight: float = 0.0
    #: shift the x_0 prediction of every frame by the known frames' mean reconstruction error
    anchor_known: bool = False
    #: start the guidance refinement from the step's mean and add the step's noise afterwards
    #: (Alg. 1 starts from the noisy sample; see ``guide``)
    guide_from_mean: bool = False

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.sampling_steps < 1:
            raise ValueError(f"sampling_steps must be >= 1, got {self.sampling_steps}")

    def timesteps(self, schedule: NoiseSchedule) -> list[int]:
        """The visited steps ``[T, ..., 0]``: every step for DDPM, ``sampling_steps`` strides for DDIM."""
        if self.sampler == "ddpm":
            return list(range(schedule.num_steps, -1, -1))
        return ddim_timesteps(schedule.num_steps, self.sampling_steps)


EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GuidanceNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``objective(x [B, F, D], s [B]) -> [B]``: the control term of Alg. 1/2 line 10, per sequence
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def label_objective(classifier: GuidanceNet, labels: torch.Tensor) -> Objective:
    """Label control (Alg. 1, Eq. 9): ``log p_phi(y | x, s)`` with ``labels`` ``[B]`` indices."""

    def objective(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(classifier(x, s), dim=-1).gather(1, labels.view(-1, 1)).squeeze(1)

    return objective


def text_objective(text_net: GuidanceNet, features: torch.Tensor, weight: float = 1.0) -> Objective:
    """Text control (Alg. 2, Eq. 10): ``weight * cos(BiT(x, s), features)`` with ``features`` ``[B, E]``."""

    def objective(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return weight * F.cosine_similarity(text_net(x, s), features, dim=-1)

    return objective


def temporal_smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x`` ``[B, F, D]`` filtered over frames by a normalised Gaussian of std ``sigma`` frames
    (truncated at 3 sigma, edges replicated)."""
    radius = min(int(math.ceil(3.0 * sigma)), x.shape[1] - 1)
    if radius < 1:
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1).expand(x.shape[2], 1, -1)
    padded = F.pad(x.transpose(1, 2), (radius, radius), mode="replicate")
    return F.conv1d(padded, kernel, groups=x.shape[2]).transpose(1, 2)


def _randn(shape: torch.Size, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=like.dtype, device=gen.device).to(like.device)


class ReverseSampler:
    """Runs reverse passes with an eps-model, an optional guidance objective and known frames."""

    def __init__(self, schedule: NoiseSchedule, eps_model: EpsModel, config: SamplerConfig) -> None:
        self.schedule = schedule
        self.eps_model = eps_model
        self.config = config

    def _eps(self, x_t: torch.Tensor, t: int, known: torch.Tensor | None,
             mask: torch.Tensor | None) -> torch.Tensor:
        """eps_theta(x_t, t), adjusted by reconstruction guidance when frames are known.

        Replacement alone (Alg. 3) lets one known frame be outvoted by the unknown ones, which settle
        on their own anatomy while the known frame is still buried in noise. Reconstruction guidance
        (Ho et al. 2022, "Video diffusion models") corrects the x_0 prediction with the gradient of
        the known frames' reconstruction error: ``x0 - w_r sqrt(abar_t) / 2 * grad ||m (x0 - known)||^2``.
        """
        batch_t = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
        w = self.config.recon_weight
        if known is None or mask is None or (w <= 0 and not self.config.anchor_known):
            with torch.no_grad():
                return self.eps_model(x_t, batch_t)
        ab = float(self.schedule.alpha_bar[t])
        if w <= 0:
            with torch.no_grad():
                eps = self.eps_model(x_t, batch_t)
            x0 = self.schedule.predict_x0(x_t, t, eps)
            return (x_t - math.sqrt(ab) * self._anchor(x0, known, mask)) / math.sqrt(1.0 - ab)
        x_in = x_t.detach().requires_grad_(True)
        with torch.enable_grad():
            eps = self.eps_model(x_in, batch_t)
            x0 = self.schedule.predict_x0(x_in, t, eps)
            err = (((x0 - known) ** 2) * mask.unsqueeze(-1)).sum()
            (grad,) = torch.autograd.grad(err, x_in)
        x0 = x0.detach() - 0.5 * w * math.sqrt(ab) * grad
        if self.config.anchor_known:
            x0 = self._anchor(x0, known, mask)
        return (x_t - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)

    @staticmethod
    def _anchor(x0: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Shift each sequence's x_0 prediction by the mean error at its known frames.

        Every frame of a sequence shares the anatomy, so the known frames' reconstruction error is,
        to first order, an anatomy offset of all frames: this is reconstruction guidance with that
        shared-offset Jacobian, and costs no backward pass.
        """
        m = mask.unsqueeze(-1).to(x0.dtype)
        offset = ((known - x0) * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)
        return x0 + offset

    def _steps(self, x_t: torch.Tensor, t: int, s: int, gen: torch.Generator, known: torch.Tensor | None = None,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One unguided transition ``t -> s``: returns ``(x_hat_s, mean, fluency variance)``."""
        eps = self._eps(x_t, t, known, mask)
        if self.config.clip_x0 is not None:
            eps = self.schedule.clip_eps(x_t, t, eps, self.config.clip_x0)
        if self.config.smooth_x0 > 0:
            eps = self.schedule.eps_from_x0(x_t, t, temporal_smooth(self.schedule.predict_x0(x_t, t, eps),
                                                                     self.config.smooth_x0))
        if self.config.sampler == "ddpm":
            mean = self.schedule.ddpm_mean(x_t, t, eps)
            sigma = self.schedule.ddpm_sigma(t) if s > 0 else 0.0  # Alg. 1 line 7: z = 0 at t = 1
        else:
            mean, sigma = self.schedule.ddim_mean_sigma(x_t, t, s, eps, self.config.eta)
            if s == 0:
                sigma = 0.0
        x_hat = mean + sigma * _randn(x_t.shape, gen, x_t) if sigma > 0 else mean
        return x_hat, mean, self.schedule.stride_variance(t, s)

    def guide(self, x_hat: torch.Tensor, mean: torch.Tensor, variance: float, objective: Objective,
              s: int) -> torch.Tensor:
        """Alg. 1/2 line 10: ``argmax_x lambda log p_theta(x | x_t) + objective(x, s)`` by Adagrad from ``x_hat``.

        ``objective`` is :func:`label_objective` (``log p_phi(y | x, s)``) or :func:`text_objective`
        (``cos(BiT(x, s), CLIP(c))``).

        ``log p_theta(x | x_t)`` is the Gaussian of the step (mean ``mean``, variance ``variance``).
        Adagrad's first update moves each coordinate by about its learning rate whatever the gradient
        scale, so the rate is ``guidance_lr * sqrt(variance)``: the refinement stays commensurate with
        the noise of the step instead of adding a fixed jitter at the last, nearly clean steps.

        Started from the noisy sample (as Alg. 1), the fluency gradient ``-lambda z / sigma`` outweighs
        the classifier's wherever the step's noise ``sigma z`` is large, so with ancestral steps the
        refinement mostly removes the step's noise instead of steering. ``guide_from_mean`` refines
        the noise-free mean and adds the step's noise back afterwards (identical for DDIM, eta = 0).
        """
        cfg = self.config
        lr = cfg.guidance_lr * math.sqrt(variance)
        s_batch = torch.full((x_hat.shape[0],), s, dtype=torch.long, device=x_hat.device)
        noise = (x_hat - mean).detach() if cfg.guide_from_mean else None
        x = (mean if noise is not None else x_hat).detach().clone()
        accum = torch.zeros_like(x)
        for _ in range(cfg.guidance_steps):
            x.requires_grad_(True)
            with torch.enable_grad():
                control = objective(x, s_batch).sum()
                fluency = -((x - mean) ** 2).sum() / (2.0 * variance)
                (grad,) = torch.autograd.grad(cfg.guidance_lambda * fluency + control, x)
            accum = accum + grad**2
            x = (x.detach() + lr * grad / (accum.sqrt() + 1e-10)).detach()
        return x if noise is None else x + noise

    def reverse(self, x_T: torch.Tensor, gen: torch.Generator, known: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, guidance: Objective | None = None,
                start: int | None = None) -> torch.Tensor:
        """One reverse pass from ``x_start`` (default ``x_T``) to ``x_0`` of shape ``[B, F, D]``.

        ``known`` (``[B, F, D]``) with ``mask`` (``[B, F]`` bool) are clean known frames (Alg. 3): after
        every step they are replaced by a fresh draw of ``q(x_s | x_0)``, and by the clean frames at
        ``s = 0``. ``guidance`` (an :data:`Objective`) switches on guided refinement after every step.
        """
        steps = self.config.timesteps(self.schedule)
        if start is not None:
            steps = [t for t in steps if t < start]
            steps = [start] + steps
        m = mask.unsqueeze(-1) if mask is not None else None
        x = x_T
        for t, s in zip(steps[:-1], steps[1:]):
            x_hat, mean, variance = self._steps(x, t, s, gen, known, mask)
            if guidance is not None:
                x_hat = self.guide(x_hat, mean, variance, guidance, s)
            if known is not None and m is not None:
                renoised = known if s == 0 else self.schedule.q_sample(known, s, _randn(known.shape, gen, known))
                x_hat = torch.where(m, renoised, x_hat)
            x = x_hat
        return x

    def sample(self, shape: tuple[int, ...], gen: torch.Generator, device: torch.device | str = "cpu",
               known: torch.Tensor | None = None, mask: torch.Tensor | None = None,
               guidance: Objective | None = None, harmonize_iters: int = 1,
               harmonize_from: float = 1.0) -> torch.Tensor:
        """Label or text control (Alg. 1, 2), filling (Alg. 3) or geometry-adaptive generation (Alg. 4).

        Pass 1 starts from ``x_T`` with unknown frames ~ N(0, I) and known frames ~ q(x_T | x_0).
        Each further harmonisation pass (Alg. 4 lines 5-6) re-noises the whole previous result with
        ``q(x_t | x_0)`` at ``t = round(harmonize_from * T)`` and reverses again. The paper restarts at
        ``t = T``; with T = 2000 and the linear schedule ``abar_T = 1.4e-9``, so that restart keeps a
        ``4e-5`` fraction of the previous pass and is in effect a fresh sample: harmonisation can
        only act from a lower restart (RePaint-style), e.g. ``harmonize_from = 0.5``.
        """
        T = self.schedule.num_steps
        probe = torch.empty(0, device=device)
        x = _randn(torch.Size(shape), gen, probe)
        if known is not None and mask is not None:
            x = torch.where(mask.unsqueeze(-1), self.schedule.q_sample(known, T, _randn(known.shape, gen, known)), x)
        x0 = self.reverse(x, gen, known, mask, guidance)
        restart = max(1, min(T, int(round(harmonize_from * T))))
        for _ in range(1, max(1, int(harmonize_iters))):
            x_t = self.schedule.q_sample(x0, restart, _randn(x0.shape, gen, x0))
            x0 = self.reverse(x_t, gen, known, mask, guidance, start=restart)
        return x0
