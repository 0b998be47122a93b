"""The landmark-guided mesh decoder (Zou et al. Sec. 3.3): Eq. 11's attention and learning."""
from __future__ import annotations

import pytest
import torch

from fc4dfs.plugins.contracts import Budget, ComponentError
from fc4dfs.zoo.decoders.lgmd import LGMDDecoder
from decoders_fixtures import errors, one_sequence
from limits import assert_below


@pytest.fixture(scope="module")
def trained() -> LGMDDecoder:
    dec = LGMDDecoder()
    dec.fit(one_sequence(), Budget("smoke"), seed=0, progress=False)
    return dec


def test_attention_weights_sum_to_one_and_mix_the_features(trained):
    net = trained.net
    torch.manual_seed(0)
    m0 = torch.randn(2, trained.topology.num_vertices, 3)
    dl = 3.0 * torch.randn(5, trained.topology.num_landmarks, 3)  # large queries: peaked, not uniform, weights
    ident = torch.tensor([0, 1, 1, 0, 1])
    with torch.no_grad():
        feats = net.features(m0)
        ctx, w = net.attention(dl, feats, ident)
    assert w.shape == (5, feats.shape[1]) and feats.shape[1] > 1
    assert bool((w >= 0).all())
    err = float((w.sum(-1) - 1).abs().max())
    assert err < 1e-5, f"attention rows sum to 1 +- {err:.2e}"
    mix = torch.einsum("nv,nvd->nd", w, feats[ident])
    scale = float(feats.abs().max())
    assert torch.allclose(ctx, mix, atol=1e-5 * scale), "context is not the weighted sum of F_e (Eq. 11)"


def test_without_attention_the_context_ignores_the_landmarks():
    """Table 5's "w/o attention" ablation (``lgmd-noattn``): uniform weights, one context per identity."""
    from fc4dfs.plugins.manager import registry

    dec = registry().get("decoder", "lgmd-noattn").load()(**registry().get("decoder", "lgmd-noattn").options)
    dec.fit(one_sequence(), Budget("smoke"), seed=0, progress=False)
    net = dec.net
    assert not any(n.startswith("attention.") for n, _ in net.named_parameters())
    torch.manual_seed(0)
    dl = 3.0 * torch.randn(4, dec.topology.num_landmarks, 3)
    ident = torch.tensor([0, 0, 1, 1])
    with torch.no_grad():
        feats = net.features(torch.randn(2, dec.topology.num_vertices, 3))
        ctx, w = net.attention(dl, feats, ident)
    assert torch.allclose(w, torch.full_like(w, 1.0 / feats.shape[1]))
    scale = float(feats.abs().max())
    assert torch.allclose(ctx[0], ctx[1], atol=1e-6 * scale) and torch.allclose(ctx[2], ctx[3], atol=1e-6 * scale)
    assert not torch.allclose(ctx[0], ctx[2], atol=1e-3 * scale), "the neutral mesh no longer reaches the context"


@pytest.mark.parametrize("backbone", ["hierarchy", "full"])
def test_lgmd_overfits_one_sequence(backbone):
    ds = one_sequence()
    dec = LGMDDecoder(backbone=backbone)
    budget = Budget("smoke", {"epochs": 100, "max_frames": None, "batch_size": 32, "lr": 3e-3, "lr_decay": 0.98})
    report = dec.fit(ds, budget, seed=0, progress=False)
    err, motion = errors(dec, ds)
    assert_below(report["final"]["l1"], report["first"]["l1"] / 10,
                 f"lgmd/{backbone}: final training L1 (limit 0.1 x the first)")
    # predicting the neutral leaves 100 % of the motion; a learning decoder removes > 92 % of it
    assert_below(err, 0.08 * motion,
                 f"lgmd/{backbone}: error left of {motion:.3f} mm of motion (limit 0.08 x motion)", " mm")


@pytest.mark.parametrize("options", [{"backbone": "coarse"}, {"backbone_filters": []}, {"filters": [0, 8]}])
def test_bad_options_are_refused(options):
    with pytest.raises(ComponentError, match="lgmd option"):
        LGMDDecoder(**options)
