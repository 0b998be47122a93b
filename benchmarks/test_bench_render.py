"""Benchmarks of rendering and export (issue 8) on a 30-frame sequence at FLAME scale (~5 k vertices).

Run: ``.venv/bin/pytest benchmarks/test_bench_render.py`` (add ``-s`` for the summary lines).
The sequence is ``load_synthetic(resolution="flame")`` when that dataset is available, else a
deformed sphere of about the same size. Target: bounded time — one frame well under a second,
the 30-frame strip + GIF that ``run`` writes per example within its 20 s budget.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fc4dfs.benchmark.export import export_sequence
from fc4dfs.benchmark.viz import (Camera, MeshRenderer, Track, animation_frames, render_strip, save_gif,
                                  vertex_errors)

T = 30


def _sphere_sequence() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    import trimesh

    ico = trimesh.creation.uv_sphere(radius=80.0, count=[52, 50])  # 5,002 vertices, 10,000 faces: FLAME scale
    v = np.asarray(ico.vertices, dtype=np.float32)
    t = np.linspace(0, 1, T, dtype=np.float32)[:, None, None]
    bump = np.exp(-((v[:, 0] / 30) ** 2 + ((v[:, 1] + 40) / 15) ** 2))[None, :, None]
    frames = v[None] + np.sin(np.pi * t) * bump * np.array([0, -10, 4], np.float32)
    lm = frames[:, ::max(1, len(v) // 68)][:, :68]
    return frames.astype(np.float32), np.asarray(ico.faces), lm, 30.0


@pytest.fixture(scope="module")
def sequence() -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str]:
    torch.set_num_threads(1)
    try:
        from fc4dfs.datasets.synthetic import load_synthetic

        ds = load_synthetic(identities=4, expressions=1, repetitions=1, resolution="flame", progress=False)
        s = max(ds.sequences, key=lambda q: q.length)
        frames = np.asarray(s.resampled(T).frames if s.length != T else s.frames, dtype=np.float32)
        return frames, ds.topology.faces, ds.topology.landmarks(frames), 30.0, "synthetic flame"
    except ImportError:
        frames, faces, lm, fps = _sphere_sequence()
        return frames, faces, lm, fps, "sphere"


def _report(name: str, seq, seconds: float) -> None:
    frames, faces = seq[0], seq[1]
    print(f"\n[bench render] {name}: {seconds:.2f} s for {frames.shape[0]} frames "
          f"({frames.shape[1]} vertices, {len(faces)} faces, {seq[4]})")


def test_bench_render_30_frames(benchmark, sequence):
    frames, faces, lm = sequence[:3]
    cam = Camera.framing([frames])
    renderer = MeshRenderer(faces, cam, height=240)

    def go():
        return [renderer.render(f, landmarks=l) for f, l in zip(frames, lm)]

    images = benchmark.pedantic(go, rounds=3, iterations=1, warmup_rounds=1)
    assert len(images) == T and images[0].shape == (240, renderer.width, 3)
    _report("30 frames rendered (240 px, landmarks)", sequence, benchmark.stats.stats.mean)


def test_bench_strip_and_gif(benchmark, sequence):
    frames, faces, lm, fps = sequence[:4]
    pred = frames + np.random.default_rng(0).normal(0, 0.3, frames.shape).astype(np.float32)
    tracks = [Track("ground truth", frames, lm), Track("prediction", pred),
              Track("error", pred, errors=vertex_errors(pred, frames))]

    def go():
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            render_strip(tracks, faces, Path(tmp) / "s.png", n_frames=6, fps=fps, height=180)
            save_gif(animation_frames(tracks, faces, height=180), Path(tmp) / "a.gif", fps)
            return time.perf_counter() - t0

    benchmark.pedantic(go, rounds=2, iterations=1)
    _report("strip (3 rows x 6) + GIF (3 panels x 30 frames), as `run` writes per example", sequence,
            benchmark.stats.stats.mean)


def test_bench_export_all_formats(benchmark, sequence):
    frames, faces, lm, fps = sequence[:4]

    def go():
        with tempfile.TemporaryDirectory() as tmp:
            return export_sequence(tmp, frames, faces, fps, landmarks=lm)

    out = benchmark.pedantic(go, rounds=3, iterations=1)
    assert len(out["ply"]) == T
    _report("export PLY+OBJ per frame, NPZ, GLB", sequence, benchmark.stats.stats.mean)
