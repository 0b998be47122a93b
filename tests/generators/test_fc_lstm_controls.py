"""FC-LSTM's optional intensity and timing conditioning (options ``intensity`` / ``timing``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.datasets.phases import apex_magnitude, measure_timing
from fc4dfs.plugins.contracts import Budget, ComponentError
from fc4dfs.zoo.generators.fc_lstm import FCLSTMGenerator, FCLSTMNet
from fc4dfs.zoo.generators.mlp import MLPGenerator


@pytest.fixture(scope="module")
def conditioned():
    ds = tiny_dataset()
    train_ids, _ = ds.generator_split()
    g = FCLSTMGenerator(intensity=True, timing=True)
    g.fit(ds.subset(train_ids), Budget("smoke", {"epochs": 40}), seed=0, progress=False)
    return ds, g


def _neutral_lm(ds, identity: str, n: int) -> np.ndarray:
    return np.repeat(ds.topology.landmarks(ds.neutral(identity)[None]), n, 0)


def test_fc_lstm_intensity_is_monotonic_on_a_toy_model(conditioned):
    """Higher requested intensity, larger apex landmark displacement, for every held-out condition."""
    ds, g = conditioned
    levels = [0.25, 0.5, 1.0, 1.5]
    for ident in ds.generator_split()[1]:
        for lab in ds.labels:
            out = g.generate(_neutral_lm(ds, ident, len(levels)), [lab] * len(levels), 25, intensity=levels)
            mags = [apex_magnitude(m) for m in out]
            assert all(b > a for a, b in zip(mags, mags[1:])), f"{ident}/{lab}: apex mm {np.round(mags, 3)} at {levels}"


def test_fc_lstm_timing_places_the_apex(conditioned):
    """The measured apex follows the requested one (limit: 10 % of the duration, 2.4 of 25 frames)."""
    ds, g = conditioned
    ident = ds.generator_split()[1][0]
    asked = [{"onset": 0.1, "apex": 0.3, "offset": 0.6, "rest": 0.9}, {"onset": 0.4, "apex": 0.7, "offset": 1.0}]
    for lab in ds.labels:
        out = g.generate(_neutral_lm(ds, ident, 2), [lab] * 2, 25, timing=asked)
        for want, got in zip(asked, (measure_timing(m) for m in out)):
            err = abs(got["apex"] - want["apex"])
            assert err <= 0.1, f"{lab}: apex at {got['apex']:.2f}, asked {want['apex']:.2f} (limit 0.10)"


def test_fc_lstm_controls_survive_save_and_load(conditioned, tmp_path: Path):
    ds, g = conditioned
    path = tmp_path / "g.safetensors"
    g.save(path)
    h = FCLSTMGenerator.load(path, ds.topology)
    nlm = _neutral_lm(ds, ds.identities[-1], 2)
    for kw in ({}, {"intensity": [0.5, 1.2]}, {"timing": {"onset": 0.2, "apex": 0.5, "offset": 0.8}}):
        a, b = g.generate(nlm, ds.labels[:2], 15, **kw), h.generate(nlm, ds.labels[:2], 15, **kw)
        assert np.allclose(a, b, atol=1e-5), f"{kw}: max difference {np.abs(a - b).max():.3g} mm"


def test_generators_refuse_controls_they_do_not_honour():
    ds = tiny_dataset()
    nlm = _neutral_lm(ds, ds.identities[-1], 1)
    plain = FCLSTMGenerator()
    plain.fit(ds.subset(ds.identities[:2]), Budget("smoke", {"epochs": 1}), seed=0, progress=False)
    assert plain.active_controls() == frozenset() and plain.controls == {"intensity", "timing"}
    with pytest.raises(ComponentError, match="cannot control intensity with these options .*intensity=true"):
        plain.generate(nlm, ds.labels[:1], 10, intensity=0.5)
    mlp = MLPGenerator()
    mlp.fit(ds.subset(ds.identities[:2]), Budget("smoke", {"epochs": 1}), seed=0, progress=False)
    with pytest.raises(ComponentError, match=r"generator 'mlp' cannot control timing$"):
        mlp.generate(nlm, ds.labels[:1], 10, timing={"onset": 0.1, "apex": 0.4, "offset": 0.8})
    g = FCLSTMGenerator(intensity=True)
    assert g.active_controls() == {"intensity"}
    with pytest.raises(ComponentError, match=r"intensity must be in \[0, 1.5\]"):
        g.check_controls(1, intensity=1.7)


def test_conditioning_leaves_the_other_initial_weights_unchanged():
    """The conditioning weights are built last: the paper's FC-LSTM draws the same initial values with or
    without them (the unconditioned model is the one of FC-4DFS, bit for bit)."""
    nets = []
    for kw in ({}, {"intensity": True, "timing": True}):
        torch.manual_seed(0)
        nets.append(FCLSTMNet(68, 3, 2, 16, 8, True, 8, 8, 10000.0, **kw).state_dict())
    assert set(nets[1]) - set(nets[0]) == {"feat_signal.weight"}
    diff = [k for k in nets[0] if not torch.equal(nets[0][k], nets[1][k])]
    assert not diff, f"initial weights differ: {diff}"


def test_e2e_rows_report_fc_lstm_intensity_and_timing_adherence(test_registry, tmp_path: Path):
    from fc4dfs.benchmark.config import RunConfig
    from fc4dfs.benchmark.runner import execute

    cfg = RunConfig(protocol="e2e", dataset="tiny", generator="fc_lstm", decoder="sgd_linear", budget="smoke",
                    generator_options={"intensity": True, "timing": True},
                    protocol_options={"intensities": [0.5, 1.0, 1.5]})
    res = execute(cfg, out_dir=tmp_path, leaderboard=None, progress=False, reg=test_registry, render=False)
    metrics = res.record["rows"][0]["metrics"]
    assert {"intensity_r2", "intensity_slope_err", "timing_err"} <= set(metrics), sorted(metrics)
    assert all(np.isfinite(metrics[m]) for m in ("intensity_r2", "intensity_slope_err", "timing_err"))
    plain = execute(RunConfig(protocol="e2e", dataset="tiny", generator="fc_lstm", decoder="sgd_linear",
                              budget="smoke"), out_dir=tmp_path, leaderboard=None, progress=False, reg=test_registry,
                    render=False)
    assert not {"intensity_r2", "timing_err"} & set(plain.record["rows"][0]["metrics"])
