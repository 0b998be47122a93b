"""The ``ddpm`` generator: conformance, the filling / label-control APIs, options, overfitting."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

from fc4dfs.datasets.base import Dataset
from fc4dfs.plugins.contracts import Budget
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.zoo.generators.ddpm import DDPMGenerator
from limits import assert_above, assert_below


#: sampling settings that keep the smoke-budget tests to seconds
FAST = dict(DDPMGenerator.conformance_options)  # the registry-wide conformance test uses these too


@lru_cache(maxsize=1)
def _trained() -> DDPMGenerator:
    ds = tiny_dataset()
    g = DDPMGenerator(diffusion_steps=200, **FAST)
    g.fit(ds.subset(ds.generator_split()[0]), Budget("smoke"), progress=False)
    return g


def test_fill_keeps_known_frames_and_fills_the_rest():
    g = _trained()
    seq = tiny_dataset().sequences[-1]
    lms = seq.landmarks[None]
    mask = np.zeros(lms.shape[:2], dtype=bool)
    mask[0, :5] = mask[0, -3:] = True
    out = g.fill(lms, mask, seed=2)
    assert out.shape == lms.shape and out.dtype == np.float32
    assert np.array_equal(out[mask], lms[mask])
    assert np.isfinite(out).all() and not np.allclose(out[~mask], lms[~mask])
    guided = g.fill(lms, mask, labels=[seq.label], seed=2)
    assert np.array_equal(guided[mask], lms[mask]) and not np.array_equal(guided, out)
    ancestral = g.fill(lms, mask, seed=2, sampler="ddpm")  # the paper's T-step sampler (T = 200 here)
    assert np.array_equal(ancestral[mask], lms[mask]) and np.isfinite(ancestral).all()


def test_generate_is_alg4_with_one_known_neutral_frame():
    g = _trained()
    nlm = tiny_dataset().sequences[0].landmarks[:1]
    out = g.generate(nlm, ["expr1"], 9, seed=5)
    known = np.zeros((1, 9) + nlm.shape[1:], dtype=np.float32)
    known[:, 0] = nlm
    mask = np.zeros((1, 9), dtype=bool)
    mask[:, 0] = True
    same = g.fill(known, mask, ["expr1"], seed=5, harmonize_iters=g.options["harmonize_iters"])
    assert np.array_equal(out, same)
    assert np.array_equal(out[:, 0], nlm)


def test_label_control_sample_shapes_and_seeds():
    g = _trained()
    a = g.sample(["expr0", "expr2"], 11, seed=0)
    assert a.shape == (2, 11, 68, 3) and np.isfinite(a).all()
    assert np.array_equal(a, g.sample(["expr0", "expr2"], 11, seed=0))
    assert not np.allclose(a, g.sample(["expr0", "expr2"], 11, seed=1))


@pytest.mark.parametrize("pca", [8, None])
def test_coordinates_and_reconstruction_guidance(tmp_path, pca):
    """PCA or raw (the paper's) coordinates; gradient reconstruction guidance changes samples."""
    ds = tiny_dataset()
    g = DDPMGenerator(pca_components=pca, recon_weight=5.0, **FAST)
    g.fit(ds.subset(ds.generator_split()[0]), Budget("smoke"), progress=False)
    dim = pca or 68 * 3
    assert g.normalizer is not None and g.normalizer.dim("frames") == dim
    assert g.eps_model is not None and g.eps_model.cfg.feature_dim == dim
    test_seq = ds.sequences[-1]  # a held-out identity: its anatomy is partly outside the PCA span
    nlm = test_seq.landmarks[:1]
    out = g.generate(nlm, [test_seq.label], 10, seed=0)
    assert out.shape == (1, 10, 68, 3) and np.isfinite(out).all()
    assert np.array_equal(out[:, 0], nlm)
    plain = DDPMGenerator.load(g.save(tmp_path / "g.safetensors"), ds.topology)
    assert np.array_equal(plain.generate(nlm, [test_seq.label], 10, seed=0), out)
    plain.options["recon_weight"] = 0.0
    assert not np.allclose(plain.generate(nlm, [test_seq.label], 10, seed=0), out)


def test_input_and_option_errors_name_the_argument():
    g = _trained()
    lms = tiny_dataset().sequences[0].landmarks[None]
    with pytest.raises(ComponentError, match="mask"):
        g.fill(lms, np.zeros((1, 3), dtype=bool))
    with pytest.raises(ComponentError, match="labels"):
        g.fill(lms, np.zeros(lms.shape[:2], dtype=bool), labels=["expr0", "expr1"])
    with pytest.raises(ComponentError, match="unknown"):
        g.sample(["nope"], 5)
    with pytest.raises(ComponentError, match="sampler"):
        DDPMGenerator(sampler="euler")
    with pytest.raises(ComponentError, match="harmonize_from"):
        DDPMGenerator(harmonize_from=0.0)
    with pytest.raises(ComponentError, match="cfg_to"):
        DDPMGenerator(cfg_from=0.5, cfg_to=0.5)
    with pytest.raises(ComponentError, match="cfg_every"):
        DDPMGenerator(cfg_every=0)
    for key, bad in (("guidance", "free"), ("parameterization", "v"), ("schedule", "sigmoid"), ("preset", "fast")):
        with pytest.raises(ComponentError, match=key):
            DDPMGenerator(**{key: bad})
    nlm = lms[:, 0]
    with pytest.raises(ComponentError, match="intensity"):
        g.generate(nlm, ["expr0"], 6, intensity=1.6)
    with pytest.raises(ComponentError, match="intensity"):
        g.generate(nlm, ["expr0"], 6, intensity=[0.5, 1.0])


def test_paper_preset_is_the_papers_sampler_and_guidance():
    """``preset=paper`` restores every departure of the defaults; options given beside it still win."""
    from fc4dfs.zoo.generators.ddpm import PAPER_PRESET

    g = DDPMGenerator(preset="paper", sampling_steps=7)
    assert {k: g.options[k] for k in PAPER_PRESET} == PAPER_PRESET
    assert g.options["sampling_steps"] == 7
    cfg = g.sampler_config()
    assert (cfg.sampler, cfg.anchor_known, cfg.clip_x0, cfg.smooth_x0) == ("ddpm", False, None, 0.0)
    assert g.schedule.num_steps == 2000 and g.schedule.kind == "linear"
    assert DDPMGenerator(preset="paper", guidance="cfg").options["guidance"] == "cfg"


def test_classifier_free_guidance_conditions_the_network():
    """guidance=cfg trains no classifier; labels and the guidance scale change samples, scale 1 is the
    conditional network alone, and a classifier-guided model refuses intensity."""
    g = _trained_as("cfg")
    assert g.classifier is None and g.eps_model is not None and g.eps_model.cond is not None
    nlm = tiny_dataset().sequences[0].landmarks[:1]
    a = g.generate(nlm, ["expr0"], 9, seed=1)
    assert not np.allclose(a, g.generate(nlm, ["expr2"], 9, seed=1))
    g.options["cfg_scale"] = 1.0
    plain = g.generate(nlm, ["expr0"], 9, seed=1)
    g.options["cfg_scale"] = 3.0
    assert not np.allclose(plain, g.generate(nlm, ["expr0"], 9, seed=1))
    with pytest.raises(ComponentError, match="cannot control intensity"):
        _trained_as("classifier").generate(nlm, ["expr0"], 9, intensity=0.5)


def test_guidance_interval_and_reuse_halve_the_unconditional_passes():
    """``cfg_every=2`` (the default) runs the unconditional half of the batch at every other step and
    adds the last guidance direction at the others; ``cfg_to=0.5`` guides only the low-noise half of
    the steps; ``cfg_every=1`` is Ho & Salimans' every-step guidance."""
    import torch

    g = _trained_as("cfg")
    model = g.eps_model
    rows: list[tuple[int, int]] = []  # (step, batch rows) of every network call
    forward = model.forward

    def counting(x, t, *args, **kwargs):
        rows.append((int(t[0]), x.shape[0]))
        return forward(x, t, *args, **kwargs)

    nlm = np.repeat(tiny_dataset().sequences[0].landmarks[:1], 3, axis=0)
    labels, steps = ["expr0", "expr1", "expr2"], g.options["sampling_steps"]
    unconditional, outs = {}, {}
    for every, to in ((1, 1.0), (2, 1.0), (1, 0.5), (2, 0.5)):
        rows.clear()
        g.options.update(cfg_every=every, cfg_to=to, harmonize_iters=1)  # one pass: sampling_steps calls
        model.forward = counting
        try:
            outs[every, to] = g.generate(nlm, labels, 9, seed=4)
        finally:
            model.forward = forward
            g.options.update({k: DDPMGenerator.defaults[k] for k in ("cfg_every", "cfg_to")},
                             harmonize_iters=FAST["harmonize_iters"])
        assert [r for r in rows if r[1] not in (3, 6)] == [] and len(rows) == steps, rows
        unconditional[every, to] = sum(r[1] - 3 for r in rows)
    assert list(unconditional.values()) == [3 * steps, 3 * steps // 2, 3 * steps // 2, 3 * math.ceil(steps / 4)]
    assert not np.array_equal(outs[1, 1.0], outs[2, 1.0]) and not np.array_equal(outs[1, 1.0], outs[1, 0.5])

    ids, T, s = g.label_ids(labels), g.schedule.num_steps, g.options["cfg_scale"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((3, 9, g.normalizer.dim("frames")), generator=gen)
    t1, t2 = torch.full((3,), T), torch.full((3,), T // 2)
    lab, nan = torch.as_tensor(ids).long(), torch.full((3,), float("nan"))
    with torch.no_grad():
        x0_c, x0_u = model(x, t1, lab, nan), model(x, t1, torch.full_like(lab, -1), nan)
        every_step = g._denoiser(ids, None, None, s, every=1)(x, t1)
        expected = g.schedule.eps_from_x0(x, t1, x0_u + s * (x0_c - x0_u))
        assert torch.allclose(every_step, expected, atol=1e-5 * float(expected.abs().max()))
        # a reused step: its conditional x_0 + (s - 1) (x0_cond - x0_null) of the last unconditional pass
        eps = g._denoiser(ids, None, None, s, (0.0, T), every=2)
        eps(x, t1)
        reused = eps(x, t2)
        expected = g.schedule.eps_from_x0(x, t2, model(x, t2, lab, nan) + (s - 1) * (x0_c - x0_u))
        assert torch.allclose(reused, expected, atol=1e-5 * float(expected.abs().max()))
        assert torch.equal(eps(x, t1), every_step)  # a larger t starts a new pass: the doubled batch again


@lru_cache(maxsize=2)
def _trained_as(guidance: str) -> DDPMGenerator:
    ds = tiny_dataset()
    g = DDPMGenerator(diffusion_steps=200, guidance=guidance, text_guidance=False, **FAST)
    g.fit(ds.subset(ds.generator_split()[0]), Budget("smoke"), progress=False)
    return g


def test_intensity_conditioning_orders_the_apex():
    """Trained on one motion at three gains (relative intensities 0.5, 1, 1.5), the apex displacement
    grows with the requested intensity, by a good part of the data's 3x spread."""
    from fc4dfs.datasets.base import Sequence
    from fc4dfs.datasets.phases import apex_magnitude

    ds = tiny_dataset()
    seq = next(s for s in ds.sequences if s.kind == "n2e" and s.length <= 24)
    frames = np.asarray(seq.frames, np.float32)
    copies = [Sequence(seq.identity, seq.label, frames[:1] + gain * (frames - frames[:1]), seq.fps, seq.kind,
                       seq.topology, {}) for gain in (0.5, 1.0, 1.5)]
    data = Dataset("gains", ds.topology, copies, ds.labels)
    g = DDPMGenerator(sampling_steps=20, harmonize_iters=1, train_lengths=[seq.length, seq.length], pca_components=4,
                      guidance="cfg", intensity_dropout=0.2, text_guidance=False)
    g.fit(data, Budget("smoke", {"iterations": 300, "lr": 3e-3}), progress=False)
    real = seq.landmarks
    levels = [0.5, 1.0, 1.5]
    out = g.generate(np.repeat(real[:1], 3, 0), [seq.label] * 3, seq.length, seed=0, intensity=levels)
    apex = np.array([apex_magnitude(x) for x in out])
    assert (np.diff(apex) > 0).all(), f"apex {apex} mm for intensities {levels}"
    # the training copies' apexes differ 3x; half of that spread is the margin
    assert_above(apex[2] / apex[0], 1.5, "apex at intensity 1.5 over apex at 0.5 (data: 3)")


def test_overfits_a_single_sequence():
    """Trained on one sequence, generating from its neutral frame reproduces it (far below its motion).

    Diffusing in the 4 PCA coordinates of that sequence's frames keeps this to seconds."""
    ds = tiny_dataset()
    seq = next(s for s in ds.sequences if s.kind == "n2e" and s.length <= 24)
    one = Dataset("one", ds.topology, [seq], ds.labels)
    g = DDPMGenerator(sampling_steps=20, harmonize_iters=1, train_lengths=[seq.length, seq.length], pca_components=4)
    rep = g.fit(one, Budget("smoke", {"iterations": 250, "cls_iterations": 20, "lr": 3e-3}), progress=False)
    real = seq.landmarks
    motion = float(np.abs(real - real[:1]).mean())
    out = g.generate(real[:1].repeat(2, 0), [seq.label] * 2, seq.length, seed=3)
    err = float(np.abs(out - real[None]).mean())
    assert_below(rep["eps"]["history"][-1], 0.5 * rep["eps"]["history"][0], "final eps loss (limit 0.5 x the first)")
    assert_below(err, 0.35 * motion, f"samples from the only training sequence (limit 0.35 x motion {motion:.3f} mm)",
                 " mm")
