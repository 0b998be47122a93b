"""The closed-form KL of the conditional-VAE generators against torch.distributions and hand values."""
from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from fc4dfs.zoo.generators.cvae import gaussian_kl, masked_mse, reparameterise


def test_kl_to_the_standard_normal_by_hand():
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension; KL(N(0, e^2) || N(0, 1)) = (e^2 - 1 - 2) / 2
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    expected = 0.5 + 0.5 * (torch.e**2 - 1.0 - 2.0)
    assert float(gaussian_kl(mu, logvar)) == pytest.approx(float(expected), rel=1e-6)
    assert float(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max()) == 0.0


def test_kl_between_diagonal_gaussians_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    lv_q, lv_p = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    ref = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_p, lv_p), ref, atol=1e-5)
    ref0 = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl(mu_q, lv_q), ref0, atol=1e-5)


def test_reparameterise_uses_the_standard_deviation():
    z = reparameterise(torch.tensor([1.0]), torch.tensor([2.0 * torch.log(torch.tensor(3.0))]), torch.tensor([2.0]))
    assert float(z) == pytest.approx(1.0 + 3.0 * 2.0)


def test_masked_mse_ignores_frame_zero_and_padding():
    target = torch.zeros(2, 4, 3)
    pred = torch.ones(2, 4, 3)
    pred[:, 0] = 100.0  # frame 0 is the neutral: not scored
    pred[1, 3] = 50.0  # padding of the shorter sequence
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    assert float(masked_mse(pred, target, mask)) == pytest.approx(1.0)
