"""The diffusion maths of the ``ddpm`` generator: forward process, reverse steps, filling, guidance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fc4dfs.zoo.generators.diffusion.sampling import ReverseSampler, SamplerConfig, label_objective
from fc4dfs.zoo.generators.diffusion.schedule import NoiseSchedule, ddim_timesteps
from limits import assert_below


def test_schedule_matches_the_paper():
    s = NoiseSchedule()
    assert s.num_steps == 2000
    assert s.betas[1] == pytest.approx(1e-4) and s.betas[2000] == pytest.approx(0.02)
    assert s.alpha_bar[0] == 1.0
    np.testing.assert_allclose(s.alpha_bar[1:], np.cumprod(1.0 - np.linspace(1e-4, 0.02, 2000)))
    assert s.alpha_bar[-1] < 1e-8  # x_T is (nearly) pure noise


def test_cosine_schedule_follows_its_alpha_bar_formula():
    """Nichol & Dhariwal Eq. 17: abar_t = f(t) / f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2), betas <= 0.999."""
    s = NoiseSchedule(num_steps=1000, kind="cosine")
    f = np.cos((np.arange(1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(s.alpha_bar[:-1], (f / f[0])[:-1], rtol=1e-9)  # the last beta is clipped
    assert (np.diff(s.alpha_bar) < 0).all() and s.betas.max() <= 0.999 and s.alpha_bar[-1] < 1e-4
    with pytest.raises(ValueError, match="schedule"):
        NoiseSchedule(kind="sigmoid")


@pytest.mark.parametrize("t", [1, 37, 100])
def test_eps_from_x0_inverts_predict_x0(t):
    s = NoiseSchedule(num_steps=100, kind="cosine")
    gen = torch.Generator().manual_seed(t)
    x_t, x0 = (torch.randn(3, 5, 4, generator=gen, dtype=torch.float64) for _ in range(2))
    eps = s.eps_from_x0(x_t, torch.full((3,), t), x0)
    torch.testing.assert_close(s.predict_x0(x_t, t, eps), x0)
    torch.testing.assert_close(s.eps_from_x0(x_t, t, x0), eps)


def test_temporal_smooth_keeps_lines_and_damps_alternation():
    """The Gaussian x_0 filter passes a constant and a linear ramp (away from the ends) and removes
    most of a frame-to-frame alternation."""
    from fc4dfs.zoo.generators.diffusion.sampling import temporal_smooth

    frames = torch.arange(20, dtype=torch.float64).view(1, 20, 1)
    ramp = torch.cat([frames, torch.full_like(frames, 3.0)], dim=2)
    out = temporal_smooth(ramp, 1.5)
    torch.testing.assert_close(out[:, 5:-5], ramp[:, 5:-5])
    torch.testing.assert_close(out[..., 1], ramp[..., 1])
    zigzag = (-1.0) ** frames
    assert_below(float(temporal_smooth(zigzag, 1.5)[:, 5:-5].abs().max()), 0.05,
                 "alternation left after smoothing (of amplitude 1, 5 % allowed)")


@pytest.mark.parametrize("t", [1, 250, 1000, 2000])
def test_forward_process_statistics(t):
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (Eq. 3 / Eq. 6)."""
    s = NoiseSchedule()
    gen = torch.Generator().manual_seed(t)
    x0 = torch.tensor([[2.0, -1.0, 0.5]]).expand(200_000, 3)
    x_t = s.q_sample(x0, torch.full((200_000,), t), torch.randn(x0.shape, generator=gen))
    ab = s.alpha_bar[t]
    np.testing.assert_allclose(x_t.mean(0).numpy(), math.sqrt(ab) * x0[0].numpy(), atol=0.01)
    np.testing.assert_allclose(x_t.var(0).numpy(), np.full(3, 1.0 - ab), rtol=0.02, atol=1e-4)


def test_q_sample_broadcasts_per_item_steps():
    s = NoiseSchedule(num_steps=10)
    x0 = torch.ones(2, 4, 3)
    out = s.q_sample(x0, torch.tensor([0, 10]), torch.zeros_like(x0))
    np.testing.assert_allclose(out[0].numpy(), 1.0)
    np.testing.assert_allclose(out[1].numpy(), math.sqrt(s.alpha_bar[10]), rtol=1e-6)


def _linear_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, step-dependent stand-in for eps_theta."""
    return 0.3 * x + 0.001 * t.view(-1, 1, 1).float()


def test_one_ddpm_step_matches_eq7_closed_form():
    """x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sqrt(beta_t) z, in float64 by hand."""
    s = NoiseSchedule(num_steps=50)
    sampler = ReverseSampler(s, _linear_eps, SamplerConfig(sampler="ddpm"))
    x_t = torch.tensor([[[0.4, -1.2, 2.0], [0.1, 0.0, -0.7]]])
    t = 17
    x_hat, mean, var = sampler._steps(x_t, t, t - 1, torch.Generator().manual_seed(3))
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3)).double().numpy()
    x = x_t.double().numpy()
    eps = 0.3 * x + 0.001 * t
    beta = 0.0001 + (0.02 - 0.0001) * (t - 1) / 49
    abar = np.prod([1 - (0.0001 + (0.02 - 0.0001) * (k - 1) / 49) for k in range(1, t + 1)])
    mu = (x - beta / math.sqrt(1 - abar) * eps) / math.sqrt(1 - beta)
    np.testing.assert_allclose(mean.numpy(), mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x_hat.numpy(), mu + math.sqrt(beta) * z, rtol=1e-5, atol=1e-6)
    assert var == pytest.approx(beta)


def test_last_ddpm_step_adds_no_noise():
    s = NoiseSchedule(num_steps=20)
    sampler = ReverseSampler(s, _linear_eps, SamplerConfig(sampler="ddpm"))
    x_t = torch.randn(1, 3, 3, generator=torch.Generator().manual_seed(0))
    x_hat, mean, _ = sampler._steps(x_t, 1, 0, torch.Generator().manual_seed(1))
    assert torch.equal(x_hat, mean)


def test_ddim_with_exact_eps_recovers_x0():
    """With the true noise as eps-prediction, one deterministic DDIM stride lands on q(x_s | x_0)'s mean path."""
    s = NoiseSchedule()
    x0 = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    x_t = s.q_sample(x0, 1200, eps)
    x_s, sigma = s.ddim_mean_sigma(x_t, 1200, 400, eps, eta=0.0)
    assert sigma == 0.0
    np.testing.assert_allclose(x_s.numpy(), s.q_sample(x0, 400, eps).numpy(), atol=1e-4)
    np.testing.assert_allclose(s.ddim_mean_sigma(x_t, 1200, 0, eps)[0].numpy(), x0.numpy(), atol=1e-3)


def test_ddim_eta_one_with_unit_stride_is_the_posterior_step():
    """eta = 1 and s = t - 1: DDIM's noise is the DDPM posterior std sqrt(beta~_t), and its mean the posterior mean."""
    s = NoiseSchedule(num_steps=50)
    t = 30
    x_t = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mean, sigma = s.ddim_mean_sigma(x_t, t, t - 1, eps, eta=1.0)
    ab_t, ab_s, beta = s.alpha_bar[t], s.alpha_bar[t - 1], s.betas[t]
    assert sigma == pytest.approx(math.sqrt((1 - ab_s) / (1 - ab_t) * beta))
    x0 = (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    posterior = (math.sqrt(ab_s) * beta / (1 - ab_t)) * x0 + (math.sqrt(1 - beta) * (1 - ab_s) / (1 - ab_t)) * x_t
    np.testing.assert_allclose(mean.numpy(), posterior.numpy(), atol=1e-6)
    assert s.ddim_mean_sigma(x_t, t, t - 1, eps, eta=0.5)[1] == pytest.approx(0.5 * sigma)


def test_ddim_timesteps():
    ts = ddim_timesteps(2000, 50)
    assert ts[0] == 2000 and ts[-1] == 0 and len(ts) == 51
    assert all(a > b for a, b in zip(ts, ts[1:]))
    assert SamplerConfig(sampler="ddpm").timesteps(NoiseSchedule(num_steps=7)) == [7, 6, 5, 4, 3, 2, 1, 0]


def test_clipping_changes_nothing_inside_the_bound():
    s = NoiseSchedule()
    x0 = torch.rand(1, 4, 3) - 0.5
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    x_t = s.q_sample(x0, 300, eps)
    np.testing.assert_allclose(s.clip_eps(x_t, 300, eps, 1.0).numpy(), eps.numpy(), atol=1e-4)
    clipped = s.predict_x0(x_t, 300, s.clip_eps(x_t, 300, 10 * eps, 1.0))
    assert float(clipped.abs().max()) <= 1.0 + 1e-4


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_filling_keeps_known_frames_exact(sampler):
    """Alg. 3: at t = 0 the known frames are the given clean frames, bit for bit."""
    s = NoiseSchedule(num_steps=30)
    rs = ReverseSampler(s, _linear_eps, SamplerConfig(sampler=sampler, sampling_steps=6))
    gen = torch.Generator().manual_seed(0)
    known = torch.randn(2, 7, 6, generator=gen)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[0, 0] = mask[1, 3:] = True
    out = rs.sample((2, 7, 6), gen, known=known, mask=mask, harmonize_iters=2)
    assert torch.equal(out[mask], known[mask])
    assert not torch.allclose(out[~mask], known[~mask])


def toy_classifier(x: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
    """Two-class logits that prefer class 0 as the sum of x grows."""
    w = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    return torch.stack([x.sum((1, 2)), -x.sum((1, 2))], 1) @ w


def test_guidance_moves_towards_the_label():
    """Adagrad refinement raises log p(y | x) and, with a huge lambda, stays at the step mean."""

    s = NoiseSchedule(num_steps=10)
    labels = label_objective(toy_classifier, torch.tensor([0]))
    x_hat = torch.zeros(1, 3, 2)
    rs = ReverseSampler(s, _linear_eps, SamplerConfig(guidance_lambda=0.0))
    guided = rs.guide(x_hat, x_hat, 0.5, labels, 3)
    before = torch.log_softmax(toy_classifier(x_hat, None), -1)[0, 0]
    after = torch.log_softmax(toy_classifier(guided, None), -1)[0, 0]
    assert after > before
    # first Adagrad step moves each coordinate by lr = guidance_lr * sqrt(variance)
    one = ReverseSampler(s, _linear_eps, SamplerConfig(guidance_lambda=0.0, guidance_steps=1))
    np.testing.assert_allclose(one.guide(x_hat, x_hat, 0.5, labels, 3).abs().numpy(), math.sqrt(0.5), rtol=1e-5)
    stiff = ReverseSampler(s, _linear_eps, SamplerConfig(guidance_lambda=1e6))
    start = torch.full((1, 3, 2), 0.01)
    assert_below(float((stiff.guide(start, torch.zeros_like(start), 0.5, labels, 3)).abs().max()), 1.1 * 0.01,
                 "a stiff fluency term's step from the start 0.01 (limit 1.1 x the start)")


def test_guidance_from_the_mean_keeps_the_step_noise():
    """``guide_from_mean`` refines the noise-free mean and adds the step's noise afterwards.

    From the noisy sample (Alg. 1) a dominant fluency term pulls the sample back to the mean, i.e. it
    removes the noise; from the mean the same refinement leaves the noise intact.
    """
    s = NoiseSchedule(num_steps=10)
    labels = label_objective(toy_classifier, torch.tensor([0]))
    mean = torch.zeros(1, 3, 2)
    noise = torch.tensor([[[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]]])
    cfg = dict(guidance_lambda=10.0, guidance_steps=3)
    paper = ReverseSampler(s, _linear_eps, SamplerConfig(**cfg))
    ours = ReverseSampler(s, _linear_eps, SamplerConfig(guide_from_mean=True, **cfg))
    variance = 0.04
    from_sample = paper.guide(mean + noise, mean, variance, labels, 3)
    from_mean = ours.guide(mean + noise, mean, variance, labels, 3)
    torch.testing.assert_close(from_mean, paper.guide(mean, mean, variance, labels, 3) + noise)
    assert_below(float((from_sample - mean).norm()), 0.5 * float(noise.norm()),
                 "distance of the refined sample from the mean (limit 0.5 x the noise)")
    # without noise (DDIM, eta = 0) both start from the same point
    torch.testing.assert_close(ours.guide(mean, mean, variance, labels, 3), paper.guide(mean, mean, variance, labels, 3))
