"""The ``actor`` generator: its KL term, per-label tokens, any length, overfitting one sequence."""
from __future__ import annotations

import pytest
import torch
from cvae_overfit import assert_cvae_overfits_one_sequence

from fc4dfs.plugins.contracts import ComponentError
from fc4dfs.zoo.generators.actor import ActorGenerator, ActorNet
from fc4dfs.zoo.generators.cvae import gaussian_kl


def small_net() -> ActorNet:
    torch.manual_seed(0)
    return ActorNet(feature_dim=6, num_labels=3, d_model=8, layers=1, heads=2, ff=16, dropout=0.0).eval()


def test_kl_term_is_the_closed_form_of_the_encoder_posterior():
    net = small_net()
    x = torch.randn(4, 5, 6)
    x[:, 0] = 0
    mask = torch.ones(4, 5, dtype=torch.bool)
    labels = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        mu, logvar = net.encode(x, mask, labels)
        _, kl = net.loss_terms(x, mask, labels, torch.full((4,), 5))
    by_hand = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(-1).mean()
    assert kl.item() == pytest.approx(float(by_hand), rel=1e-5)
    assert kl.item() == pytest.approx(float(gaussian_kl(mu, logvar).mean()), rel=1e-6)


def test_distribution_tokens_are_per_label_and_padding_is_ignored():
    net = small_net()
    x = torch.randn(2, 6, 6)
    x[:, 0] = 0
    full = torch.ones(2, 6, dtype=torch.bool)
    mu_a, _ = net.encode(x, full, torch.tensor([0, 0]))
    mu_b, _ = net.encode(x, full, torch.tensor([1, 1]))
    assert not torch.allclose(mu_a, mu_b)
    short = full.clone()
    short[:, 4:] = False
    padded = x.clone()
    padded[:, 4:] = 1e3
    assert torch.allclose(net.encode(x[:, :4], full[:, :4], torch.tensor([0, 1]))[0],
                          net.encode(padded, short, torch.tensor([0, 1]))[0], atol=1e-5)


def test_the_number_of_time_queries_sets_the_length():
    net = small_net()
    g = torch.Generator().manual_seed(0)
    for length in (2, 9, 40):
        out = net.sample(torch.tensor([0, 2]), length, g).detach()
        assert out.shape == (2, length, 6) and float(out[:, 0].abs().max()) == 0.0


def test_overfits_a_single_sequence():
    assert_cvae_overfits_one_sequence(ActorGenerator, {}, {"d_model": 64, "layers": 1, "heads": 4, "ff": 128,
                                                           "epochs": 300, "lr": 2e-3, "one_length_per_epoch": False})


def test_options_are_validated():
    with pytest.raises(ComponentError, match="kl_weight"):
        ActorGenerator(kl_weight=-1.0)
    with pytest.raises(ComponentError, match="train_lengths"):
        ActorGenerator(train_lengths=[1])
    assert ActorGenerator().options["kl_weight"] == 1e-5  # ACTOR's published lambda_KL
