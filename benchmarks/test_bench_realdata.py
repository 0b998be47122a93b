"""Benchmarks of the real-data pipeline (issue 9): PLY parsing, cache opening, preprocessing memory.

Run: ``.venv/bin/pytest benchmarks/test_bench_realdata.py -s`` (``-s`` shows the summary lines).
Set ``FC4DFS_BENCH_LARGE=1`` to also time opening a Florence4D-sized cache (399,000 files).

Targets (issue 9): parsing >= 10x trimesh's per-file loader; opening an existing cache < 1 s;
peak RSS while preprocessing 10x and 100x more sequences <= 1 GB and flat.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.datasets.landmarks import save_landmark_embedding
from fc4dfs.datasets.ply import PlyFrameReader, read_ply, write_ply

FLAME_V, FLAME_F = 5023, 9976
N_FILES = 60


def flame_sized_mesh(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A curved grid cut to FLAME's counts (5,023 vertices, 9,976 triangles), in metres."""
    nx = 72
    ny = int(np.ceil(FLAME_V / nx)) + 1
    u, w = np.meshgrid(np.linspace(-0.08, 0.08, nx), np.linspace(-0.1, 0.1, ny))
    verts = np.stack([u.ravel(), w.ravel(), 0.05 * np.cos(8 * u.ravel()) * np.cos(6 * w.ravel())], 1)[:FLAME_V]
    idx = np.arange(nx * ny).reshape(ny, nx)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1), np.stack([a, b, c], 1)])
    faces = faces[(faces < FLAME_V).all(1)][:FLAME_F]  # a grid has ~9,764; the rest use the other diagonal
    assert len(faces) == FLAME_F
    rng = np.random.default_rng(seed)
    return verts + rng.normal(scale=1e-4, size=verts.shape), faces


@pytest.fixture(scope="module")
def ply_files(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("plybench")
    out: dict[str, list[Path]] = {}
    for fmt in ("binary_little_endian", "ascii"):
        files = []
        for i in range(N_FILES):
            v, f = flame_sized_mesh(i)
            p = root / fmt / f"frame_{i}.ply"
            write_ply(p, v, f, fmt=fmt)
            files.append(p)
        out[fmt] = files
    return out


def _best(fn, rounds: int = 3, clock=time.perf_counter) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_ply_parsing_vs_trimesh(benchmark, ply_files, fmt):
    trimesh = pytest.importorskip("trimesh")
    files = ply_files[fmt]
    reader = PlyFrameReader.from_file(files[0])
    benchmark.pedantic(lambda: [reader.read(p) for p in files], rounds=5, iterations=1)
    ours_frames = _best(lambda: [reader.read(p) for p in files])
    ours_full = _best(lambda: [read_ply(p) for p in files])
    tm_default = _best(lambda: [trimesh.load(p) for p in files], rounds=2)
    tm_raw = _best(lambda: [trimesh.load(p, process=False) for p in files], rounds=2)
    a, b = reader.read(files[1]), np.asarray(trimesh.load(files[1], process=False).vertices, np.float32)
    assert np.allclose(a, b, atol=1e-6)
    n = len(files)
    info = {"format": fmt, "meshes": n, "ours_frames_per_s": n / ours_frames, "ours_full_per_s": n / ours_full,
            "trimesh_per_s": n / tm_default, "trimesh_noprocess_per_s": n / tm_raw,
            "speedup_vs_trimesh": tm_default / ours_frames, "speedup_vs_trimesh_noprocess": tm_raw / ours_frames,
            "speedup_full_parse_vs_trimesh": tm_default / ours_full}
    benchmark.extra_info.update(info)
    print(f"\n[load average {os.getloadavg()[0]:.1f}] PLY {fmt}: ours {info['ours_frames_per_s']:.0f} meshes/s (vertices + face check), "
          f"{info['ours_full_per_s']:.0f}/s (full parse); trimesh.load {info['trimesh_per_s']:.0f}/s "
          f"(process=False {info['trimesh_noprocess_per_s']:.0f}/s); speedup {info['speedup_vs_trimesh']:.1f}x "
          f"({info['speedup_vs_trimesh_noprocess']:.1f}x vs process=False)")


# --------------------------------------------------------------------------- cache open time
def _linked_tree(root: Path, source: Path, identities: int, labels: int, frames: int, name) -> None:
    """A dataset tree whose files are hard links to one PLY (cheap to make at any size)."""
    import shutil

    for i in range(identities):
        own = root / f"id{i:03d}.source"  # one copy per identity: file systems cap the links per inode
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, own)
        for k in range(labels):
            d = root / f"id{i:03d}" / f"expr{k:02d}"
            d.mkdir(parents=True, exist_ok=True)
            for t in range(1, frames + 1):
                os.link(own, d / name(k, t))


def _tiny_source(root: Path) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    src = root / "source.ply"
    write_ply(src, np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.15, 0], [0.1, 0.15, 0.02]]), [[0, 1, 2], [1, 3, 2]])
    lm = root / "lm.npz"
    save_landmark_embedding(lm, [0, 1, 1], [[1, 0, 0], [0, 1, 0], [0.2, 0.3, 0.5]])
    return src, lm


def _open_times(benchmark, root: Path, lm: Path, cache: Path, label: str) -> dict:
    from fc4dfs.datasets.florence4d import load_florence4d

    t = time.perf_counter()
    ds = load_florence4d(root=root, landmarks=lm, cache_dir=cache, progress=False)
    build = time.perf_counter() - t
    benchmark.pedantic(lambda: load_florence4d(root=root, landmarks=lm, cache_dir=cache), rounds=3, iterations=1)
    modes = ("auto", "stat", "folders", "none")
    times = {m: _best(lambda m=m: load_florence4d(root=root, landmarks=lm, cache_dir=cache, verify=m)) for m in modes}
    cpu = {m: _best(lambda m=m: load_florence4d(root=root, landmarks=lm, cache_dir=cache, verify=m),
                    clock=time.process_time) for m in modes}
    info = {"files": sum(s.length for s in ds.sequences), "sequences": len(ds.sequences), "first_build_s": build,
            **{f"open_{m}_s": t for m, t in times.items()}, **{f"open_{m}_cpu_s": t for m, t in cpu.items()}}
    benchmark.extra_info.update(info)
    print(f"\nopen {label} cache ({info['files']} files, {info['sequences']} sequences), wall (CPU) s: "
          + ", ".join(f"{m} {times[m]:.3f} ({cpu[m]:.3f})" for m in modes) + f"; first build {build:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    return info


def test_open_existing_cache_coma_sized(benchmark, tmp_path_factory):
    root = tmp_path_factory.mktemp("open_coma")
    src, lm = _tiny_source(root / "src")
    _linked_tree(root / "data", src, 12, 12, 142, lambda k, t: f"expr{k:02d}_{t}.ply")  # 20,448 files like CoMA
    _open_times(benchmark, root / "data", lm, root / "cache", "CoMA-sized")


@pytest.mark.skipif(os.environ.get("FC4DFS_BENCH_LARGE") != "1", reason="set FC4DFS_BENCH_LARGE=1 (399,000 files)")
def test_open_existing_cache_florence_sized(benchmark, tmp_path_factory):
    root = tmp_path_factory.mktemp("open_florence")
    src, lm = _tiny_source(root / "src")
    _linked_tree(root / "data", src, 95, 70, 60, lambda k, t: f"expr{k:02d}_{t}.ply")
    _open_times(benchmark, root / "data", lm, root / "cache", "Florence4D-sized")


# --------------------------------------------------------------------------- preprocessing memory
_RSS_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from fc4dfs.datasets import realdata

def hwm_mb():  # this process's peak resident set (VmHWM; ru_maxrss would include the forking parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

info = realdata.RealDatasetInfo("florence4d", "Florence4D", "X", "--x", "u", "layout", 25.0)
base = hwm_mb()
t = time.perf_counter()
store = realdata.open_raw_store(info, Path(sys.argv[1]), cache=sys.argv[2], progress=False)
dt = time.perf_counter() - t
print(json.dumps({"baseline_mb": base, "peak_mb": hwm_mb(), "meshes": int(store.frames.shape[0]),
                  "store_gb": store.frames.nbytes / 1e9, "seconds": dt}))
"""


def test_peak_rss_flat_while_preprocessing(benchmark, tmp_path_factory):
    """Preprocess 1x, 10x and 100x more sequences of FLAME-sized meshes in a fresh process each."""
    import shutil

    root = tmp_path_factory.mktemp("rss")
    v, f = flame_sized_mesh()
    src = root / "flame_sized.ply"
    write_ply(src, v, f)
    results = {}
    for scale in (1, 10, 100):
        data, cache = root / f"x{scale}", root / f"cache{scale}"
        _linked_tree(data, src, 4 * scale, 5, 20, lambda k, t: f"expr{k:02d}_{t}.ply")  # 20 x scale sequences
        out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(data), str(cache)], capture_output=True,
                             text=True, check=True, env={**os.environ, "FC4DFS_PROGRESS": "0"})
        results[scale] = json.loads(out.stdout.strip().splitlines()[-1])
        shutil.rmtree(cache)
        shutil.rmtree(data)
        r = results[scale]
        print(f"\npreprocess {scale:>3}x: {r['meshes']} meshes ({r['store_gb']:.2f} GB float32) in "
              f"{r['seconds']:.1f} s ({r['meshes'] / r['seconds']:.0f} meshes/s); peak RSS {r['peak_mb']:.0f} MB "
              f"(after imports {r['baseline_mb']:.0f} MB)")
    benchmark.extra_info.update({f"peak_rss_mb_x{s}": r["peak_mb"] for s, r in results.items()})
    benchmark.extra_info.update({f"meshes_x{s}": r["meshes"] for s, r in results.items()})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
