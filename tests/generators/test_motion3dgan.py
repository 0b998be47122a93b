"""The ``motion3dgan`` generator: SRVF geometry on the hypersphere, overfitting one sequence, options."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fc4dfs.plugins.contracts import Budget, ComponentError
from fc4dfs.zoo.generators.motion3dgan import (Motion3DGANGenerator, SphereGenerator, l2_norm, project_to_sphere,
                                               resample_srvf, srvf, srvf_inverse)
from rnn_overfit import one_sequence_dataset
from limits import assert_below


def smooth_curve(samples: int) -> torch.Tensor:
    """A smooth curve in R^6 (float64), ``[samples, 6]``, with a slow start and a stop."""
    t = torch.linspace(0, 1, samples, dtype=torch.float64)
    s = t * t * (3 - 2 * t)
    return torch.stack([10 * torch.sin(2 * s), 4 * s**2, -3 * torch.cos(3 * s), 5 * s, torch.sin(6 * t), 2 * t], -1)


def extent(x: torch.Tensor) -> float:
    return float((x.max(0).values - x.min(0).values).norm())


def test_srvf_round_trip_on_the_same_grid():
    x = smooth_curve(61)
    q, ell = srvf(x)
    back = srvf_inverse(q, ell, x[0])
    err, limit = float((back - x).norm(dim=-1).max()), 1e-3 * extent(x)
    assert_below(err, limit, "SRVF round trip error (limit 1e-3 x the curve's extent)")


@pytest.mark.parametrize("intervals", [150, 400, 700])
def test_srvf_round_trip_through_resampling_to_another_length(intervals):
    """q learnt on 400 intervals, integrated on another grid, reproduces the curve at that grid."""
    fine = smooth_curve(401)
    q, ell = srvf(fine)
    back = srvf_inverse(resample_srvf(q, intervals), ell, fine[0])
    truth = smooth_curve(intervals + 1)
    err, limit = float((back - truth).norm(dim=-1).max()), 1e-3 * extent(truth)
    assert back.shape == truth.shape
    assert_below(err, limit, f"{intervals} intervals: error (limit 1e-3 x the curve's extent)")


def test_srvf_length_is_the_curve_length():
    x = smooth_curve(2001)
    _, ell = srvf(x)
    polyline = float((x[1:] - x[:-1]).norm(dim=-1).sum())
    assert float(ell) == pytest.approx(polyline, rel=1e-12)


def test_q_lies_on_the_unit_sphere_after_projection():
    torch.manual_seed(0)
    raw = 5.0 * torch.randn(4, 12, 9, dtype=torch.float64)
    for q in (project_to_sphere(raw), srvf(smooth_curve(33))[0], resample_srvf(project_to_sphere(raw), 7)):
        norm = l2_norm(q)
        assert torch.allclose(norm, torch.ones_like(norm), atol=1e-12), norm
    g = SphereGenerator(num_labels=3, intervals=8, feature_dim=6, hidden=16, z_dim=4)
    q, _ = g(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    assert torch.allclose(l2_norm(q), torch.ones(5), atol=1e-5)
    # projection is the nearest sphere point: a point already on the sphere does not move
    on = project_to_sphere(raw)
    assert torch.allclose(project_to_sphere(on), on, atol=1e-12)


def test_a_constant_curve_has_zero_length_and_integrates_to_itself():
    x = torch.ones(11, 6, dtype=torch.float64) * 3.0
    q, ell = srvf(x)
    assert float(ell) == 0.0 and float(q.abs().max()) == 0.0
    assert torch.allclose(srvf_inverse(q, ell, x[0]), x)


def test_overfits_a_single_sequence():
    """Trained on one sequence, samples at its length come close to it; the baseline is the static
    neutral (whose error is the sequence's own motion), measured here."""
    data = one_sequence_dataset()
    seq = data.sequences[0]
    g = Motion3DGANGenerator(intervals=16)
    g.fit(data, Budget("smoke", {"iterations": 200, "block": 50, "lr": 1e-3, "batch": 8}), progress=False)
    real = seq.landmarks
    static = float(np.linalg.norm(real - real[:1], axis=-1).mean())
    out = g.generate(real[:1].repeat(3, 0), [seq.label] * 3, seq.length, seed=1)
    err = float(np.linalg.norm(out - real[None], axis=-1).mean())
    assert np.array_equal(out[:, 0], real[:1].repeat(3, 0))
    assert_below(err, 0.35 * static, "samples from the only training sequence (limit 0.35 x static)", " mm")


def test_rejects_bad_options():
    with pytest.raises(ComponentError, match="intervals"):
        Motion3DGANGenerator(intervals=0)
    with pytest.raises(ComponentError, match="n_critic"):
        Motion3DGANGenerator(n_critic=0)
