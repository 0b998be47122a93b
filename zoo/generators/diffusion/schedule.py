"""The DDPM forward process and the closed-form reverse steps (Zou et al. §3.1, Ho et al. 2020).

Time follows the paper: ``t = 0`` is clean data and ``t = 1..T`` are the noisy latents, so every
array below has ``T + 1`` entries with ``alpha_bar[0] = 1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


#: variance schedules: the paper's ``linear`` betas, or Nichol & Dhariwal's ``cosine`` alpha_bar
SCHEDULES = ("linear", "cosine")


def cosine_betas(num_steps: int, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """``beta_1 .. beta_T`` of ``abar(t) = cos^2((t / T + s) / (1 + s) * pi / 2)`` (Nichol & Dhariwal
    2021, Eq. 17, s = 0.008), each clipped to ``max_beta``: ``[T]`` float64."""
    f = np.cos((np.arange(num_steps + 1) / num_steps + offset) / (1 + offset) * np.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], max_beta)


@dataclass(frozen=True)
class NoiseSchedule:
    """Variance schedule ``beta_1 .. beta_T``, sigma_t^2 = beta_t.

    ``kind="linear"``: betas linear from ``beta_start`` to ``beta_end`` (the paper: 1e-4 -> 0.02,
    T = 2000). ``kind="cosine"``: :func:`cosine_betas` (``beta_start``/``beta_end`` unused).
    """

    num_steps: int = 2000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    kind: str = "linear"

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.kind!r}")
        raw = (np.linspace(self.beta_start, self.beta_end, self.num_steps) if self.kind == "linear"
               else cosine_betas(self.num_steps))
        betas = np.concatenate([[0.0], raw])
        alphas = 1.0 - betas
        object.__setattr__(self, "_betas", betas)
        object.__setattr__(self, "_alphas", alphas)
        object.__setattr__(self, "_alpha_bar", np.cumprod(alphas))

    @property
    def betas(self) -> np.ndarray:
        """``[T + 1]`` float64; ``betas[0] = 0``."""
        return self._betas  # type: ignore[attr-defined]

    @property
    def alphas(self) -> np.ndarray:
        return self._alphas  # type: ignore[attr-defined]

    @property
    def alpha_bar(self) -> np.ndarray:
        """``[T + 1]`` cumulative products; ``alpha_bar[0] = 1``."""
        return self._alpha_bar  # type: ignore[attr-defined]

    def _at(self, arr: np.ndarray, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """``arr[t]`` broadcast against ``like`` (batch-first)."""
        if isinstance(t, int):
            return torch.tensor(arr[t], dtype=like.dtype, device=like.device)
        vals = torch.as_tensor(arr, dtype=like.dtype, device=like.device)[t.long()]
        return vals.reshape(-1, *([1] * (like.ndim - 1)))

    # -- forward process ------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """Eq. 6: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``."""
        ab = self._at(self.alpha_bar, t, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    # -- reverse steps --------------------------------------------------------------------
    def ddpm_mean(self, x_t: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
        """Eq. 7 with the DDPM denominator ``sqrt(1 - abar_t)``.

        The paper prints ``sqrt(1 - alpha_t)``; Ho et al.'s derivation (which the paper follows) has
        ``sqrt(1 - abar_t)``, which is what makes ``mu`` the posterior mean under eps-prediction.
        """
        beta, alpha, ab = float(self.betas[t]), float(self.alphas[t]), float(self.alpha_bar[t])
        return (x_t - (beta / math.sqrt(1.0 - ab)) * eps) / math.sqrt(alpha)

    def ddpm_sigma(self, t: int) -> float:
        """``sigma_t = sqrt(beta_t)`` (Sec. 4)."""
        return float(np.sqrt(self.betas[t]))

    def predict_x0(self, x_t: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
        ab = float(self.alpha_bar[t])
        return (x_t - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)

    def clip_eps(self, x_t: torch.Tensor, t: int, eps: torch.Tensor, bound: float) -> torch.Tensor:
        """The eps consistent with the x_0 prediction clipped to ``[-bound, bound]``.

        Eq. 7 with this eps equals the posterior mean given the clipped x_0 (Ho et al.'s sampler
        clips x_0 the same way); nothing changes while the prediction stays inside the bound.
        """
        return self.eps_from_x0(x_t, t, self.predict_x0(x_t, t, eps).clamp(-bound, bound))

    def eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor | int, x0: torch.Tensor) -> torch.Tensor:
        """The eps of Eq. 6 that maps ``x0`` to ``x_t`` at step ``t >= 1`` (an x_0-predicting model's eps)."""
        ab = self._at(self.alpha_bar, t, x_t)
        return (x_t - ab.sqrt() * x0) / (1.0 - ab).sqrt()

    def ddim_mean_sigma(self, x_t: torch.Tensor, t: int, s: int, eps: torch.Tensor,
                        eta: float = 0.0) -> tuple[torch.Tensor, float]:
        """DDIM (Song et al. 2021) from ``t`` to ``s < t``: mean and noise std of ``x_s``."""
        ab_t, ab_s = float(self.alpha_bar[t]), float(self.alpha_bar[s])
        sigma = eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t)) * math.sqrt(max(0.0, 1.0 - ab_t / ab_s))
        x0 = self.predict_x0(x_t, t, eps)
        direction = math.sqrt(max(0.0, 1.0 - ab_s - sigma**2)) * eps
        return math.sqrt(ab_s) * x0 + direction, sigma

    def stride_variance(self, t: int, s: int) -> float:
        """``1 - abar_t / abar_s``: the forward variance from ``s`` to ``t`` (``beta_t`` when s = t - 1).

        Used as the width of the fluency term ``log p_theta(x | x_t)`` in guided DDIM steps, so that
        guidance sees the same Gaussian as a DDPM step when the stride is one.
        """
        return float(1.0 - self.alpha_bar[t] / self.alpha_bar[s])


def ddim_timesteps(num_steps: int, sampling_steps: int) -> list[int]:
    """Decreasing visit order ``[T, ..., 0]`` with ``sampling_steps`` evenly spaced strides."""
    if sampling_steps < 1:
        raise ValueError(f"sampling_steps must be >= 1, got {sampling_steps}")
    n = min(int(sampling_steps), num_steps)
    ts = np.unique(np.round(np.linspace(0, num_steps, n + 1)).astype(int))[::-1]
    return [int(t) for t in ts]
