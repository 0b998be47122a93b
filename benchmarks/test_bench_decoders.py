"""Speed of the mesh layers and the landmark decoders at FLAME resolution (issue 4).

Targets on the 2-core CPU, batch 32: S2D and MIADNet inference >= 300 frames/s and training
>= 80 frames/s; SpiralConv >= 2x a naive SpiralConv (index gather + ``nn.Linear``, as the
reference code does it), measured in the same run. Run::

    .venv/bin/pytest benchmarks/test_bench_decoders.py            # FC4DFS_BENCH_THREADS=1 or 2

Data: ``load_synthetic(resolution="flame")`` (5,086 vertices, FLAME-like), 4 identities. The
decoders are fitted for one tiny epoch only: speed does not depend on the weights. Inference is
``decode`` of one 32-frame sequence (the neutral is encoded once per sequence, as the protocols
call it); training is one optimiser step on 32 frames of several identities.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from fc4dfs.plugins.contracts import Budget
from fc4dfs.zoo.decoders import SPECS
from fc4dfs.zoo.decoders.common import collect_frames
from fc4dfs.zoo.mesh.layers import NaiveSpiralConv, SpiralConv

BATCH = 32
THREADS = int(os.environ.get("FC4DFS_BENCH_THREADS", min(2, os.cpu_count() or 1)))
TARGETS = {"s2d": (300.0, 80.0), "miadnet": (300.0, 80.0)}


@pytest.fixture(scope="module")
def flame():
    torch.set_num_threads(THREADS)
    from fc4dfs.datasets.synthetic import load_synthetic

    ds = load_synthetic(resolution="flame", identities=4, expressions=2, repetitions=1, progress=False)
    return ds


@pytest.fixture(scope="module", params=[s.name for s in SPECS])
def fitted(request, flame):
    spec = next(s for s in SPECS if s.name == request.param)
    dec = spec.load()(**spec.options)
    dec.fit(flame, Budget("smoke", {"epochs": 1, "max_frames": 64}), progress=False)
    return request.param, dec, flame


# --------------------------------------------------------------------------- SpiralConv
@pytest.mark.parametrize("impl", ["fast", "naive"])
@pytest.mark.parametrize("channels", [(32, 16), (16, 3)], ids=["32-16", "16-3"])
def test_spiral_conv_train_step(benchmark, flame, impl, channels):
    """Forward + backward of S2D's finest spiral convolutions (the bulk of its cost)."""
    from fc4dfs.zoo.mesh.hierarchy import cached_hierarchy

    fs = collect_frames(flame, 64)
    h = cached_hierarchy(flame.topology.hash, fs.neutrals.mean(0), flame.topology.faces)
    cin, cout = channels
    torch.manual_seed(0)
    fast = SpiralConv(cin, cout, h.spirals[0])
    layer = fast if impl == "fast" else NaiveSpiralConv(cin, cout, h.spirals[0]).load_from(fast)
    x = torch.randn(BATCH, h.sizes[0], cin, requires_grad=True)

    def step():
        layer(x).square().mean().backward()

    step()
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    benchmark.extra_info.update({"impl": impl, "vertices": h.sizes[0], "spiral": int(h.spirals[0].shape[1]),
                                 "frames_per_s": BATCH / benchmark.stats.stats.mean, "threads": THREADS,
                                 "target": "fast >= 2x naive"})


# --------------------------------------------------------------------------- decoders
def test_decoder_inference(benchmark, fitted):
    name, dec, ds = fitted
    seq = max(ds.sequences, key=lambda s: s.length)
    lms = np.resize(seq.landmarks, (BATCH,) + seq.landmarks.shape[1:])[None]
    mesh = ds.neutral(seq.identity)[None]
    nlm = ds.topology.landmarks(mesh)
    out = dec.decode(mesh, nlm, lms)
    assert out.shape == (1, BATCH, ds.topology.num_vertices, 3)
    benchmark.pedantic(dec.decode, args=(mesh, nlm, lms), rounds=5, warmup_rounds=1)
    fps = BATCH / benchmark.stats.stats.mean
    benchmark.extra_info.update({"decoder": name, "frames_per_s": fps, "threads": THREADS,
                                 "target_frames_per_s": TARGETS.get(name, (None, None))[0]})


def test_decoder_training(benchmark, fitted):
    name, dec, ds = fitted
    if name == "pca":  # closed form: time the whole fit per training frame instead
        frames = sum(s.length for s in ds.sequences)
        budget = Budget("paper")
        benchmark.pedantic(dec.fit, args=(ds, budget), kwargs={"progress": False}, rounds=2, warmup_rounds=0)
        benchmark.extra_info.update({"decoder": name, "frames_per_s": frames / benchmark.stats.stats.mean,
                                     "threads": THREADS})
        return
    fs = collect_frames(ds)
    data = dec.training_tensors(fs, "cpu")
    opt = torch.optim.Adam(dec.net.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    dec.net.train()

    def step():
        dec.training_step(opt, data, torch.as_tensor(rng.choice(len(fs.frames), BATCH, replace=False)))

    step()
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    dec.net.eval()
    benchmark.extra_info.update({"decoder": name, "frames_per_s": BATCH / benchmark.stats.stats.mean,
                                 "threads": THREADS, "target_frames_per_s": TARGETS.get(name, (None, None))[1]})


# --------------------------------------------------------------------------- naive reference
def _naive_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module`` with every SpiralConv replaced by the reference-style layer."""
    import copy

    clone = copy.deepcopy(module)
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SpiralConv):
                naive = NaiveSpiralConv(child.in_channels, child.out_channels, child.spiral).load_from(child)
                setattr(parent, name, naive)
    return clone


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_naive_s2d_reference(benchmark, flame, mode):
    """S2D with reference-style spiral layers, measured in the same run as the decoders above."""
    spec = next(s for s in SPECS if s.name == "s2d")
    dec = spec.load()()
    dec.fit(flame, Budget("smoke", {"epochs": 1, "max_frames": 64}), progress=False)
    dec.net = _naive_copy(dec.net)
    fs = collect_frames(flame)
    data = dec.training_tensors(fs, "cpu")
    if mode == "inference":
        idx = torch.arange(BATCH) % len(fs.frames)
        dl, l0, m0 = dec.norm.inputs(data["landmarks"][idx], data["neutral_landmarks"], data["neutrals"],
                                     data["ident"][idx])

        def step():
            with torch.no_grad():
                dec.net(dl, l0, m0, data["ident"][idx])
    else:
        opt = torch.optim.Adam(dec.net.parameters(), lr=1e-4)
        rng = np.random.default_rng(0)

        def step():
            dec.training_step(opt, data, torch.as_tensor(rng.choice(len(fs.frames), BATCH, replace=False)))

    step()
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    benchmark.extra_info.update({"decoder": "s2d (naive SpiralConv)", "mode": mode, "threads": THREADS,
                                 "frames_per_s": BATCH / benchmark.stats.stats.mean})
