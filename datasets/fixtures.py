"""Small datasets written in the exact CoMA and Florence4D on-disk layouts, for tests and demos.

The real datasets cannot be redistributed, so tests write look-alikes: the faces of
:func:`tiny_dataset` (a few hundred vertices), in metres, as PLY files named
and nested as the real ones, with a known neutral hold → onset → apex hold → release → neutral
hold timing per sequence. Also writes a landmark embedding file (``.npz`` of face index +
barycentric pairs) matching the topology::

    from fc4dfs.datasets.fixtures import write_coma_fixture
    fx = write_coma_fixture(tmp_path / "coma")
    ds = load_coma(root=fx.root, landmarks=fx.landmarks)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from fc4dfs.datasets.base import Dataset, Sequence, Topology
from fc4dfs.datasets.landmarks import save_landmark_embedding
from fc4dfs.datasets.ply import write_ply


@dataclass
class Fixture:
    """A written fixture: where it is and the ground truth (frames in mm, apex frame index)."""

    root: Path
    landmarks: Path
    faces: np.ndarray
    num_vertices: int
    # (identity, label) -> frames [T, V, 3] in mm, and the files written for it (in frame order)
    frames: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    files: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    frame_numbers: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    timing: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    @property
    def identities(self) -> list[str]:
        return list(dict.fromkeys(i for i, _ in self.frames))


def expression_weights(hold0: int, rise: int, hold1: int, fall: int, hold2: int) -> np.ndarray:
    """Intensity per frame: neutral hold, smoothstep rise, apex hold, smoothstep fall, neutral hold."""
    def ramp(n: int) -> np.ndarray:
        t = np.linspace(0.0, 1.0, n + 2)[1:-1]
        return t * t * (3 - 2 * t)

    return np.concatenate([np.zeros(hold0), ramp(rise), np.ones(hold1), ramp(fall)[::-1], np.zeros(hold2)])


def _source(n_identities: int, n_labels: int):
    return tiny_dataset(n_identities=max(n_identities, 4), n_labels=max(n_labels, 1))


def _write(root: Path, ident_names: list[str], label_names: list[str], filename, fmt_of, *, seed: int,
           gaps: bool, n_identities: int, extra_props: bool) -> Fixture:
    src = _source(n_identities, len(label_names))
    topo = src.topology
    rng = np.random.default_rng(seed)
    fx = Fixture(root, root / "landmarks.npz", topo.faces.copy(), topo.num_vertices)
    save_landmark_embedding(fx.landmarks, topo.lmk_face_idx, topo.lmk_bary)
    for i, ident in enumerate(ident_names):
        neutral = src.neutral(src.identities[i])
        for k, label in enumerate(label_names):
            n2e = next(s for s in src.sequences if s.identity == src.identities[i] and s.label == src.labels[k]
                       and s.kind == "n2e")
            apex = np.asarray(n2e.frames[-1], dtype=np.float64)
            h0, rise, h1, fall, h2 = (int(x) for x in rng.integers([3, 6, 3, 5, 2], [6, 10, 7, 9, 5]))
            w = expression_weights(h0, rise, h1, fall, h2)
            frames = (neutral[None] + w[:, None, None] * (apex - neutral)[None]).astype(np.float32)
            numbers = list(range(1, len(w) + 1))
            if gaps and (i + k) % 2 == 0:  # drop a capture inside the rise: a gap in the numbering
                drop = h0 + rise // 2
                frames = np.delete(frames, drop, axis=0)
                numbers.pop(drop)
            folder = root / ident / label
            paths = []
            for n, f in zip(numbers, frames):
                p = folder / filename(label, n)
                extra = {"nx": np.zeros(len(f)), "ny": np.zeros(len(f)), "nz": np.ones(len(f))} if extra_props else None
                write_ply(p, f.astype(np.float64) / 1000.0, topo.faces, fmt=fmt_of(i, k, n),
                          extra_vertex_properties=extra)
                paths.append(p)
            key = (ident, label)
            fx.frames[key], fx.files[key], fx.frame_numbers[key] = frames, paths, numbers
            fx.timing[key] = {"hold0": h0, "rise": rise, "hold1": h1, "fall": fall, "hold2": h2}
    return fx


def write_coma_fixture(root: str | os.PathLike, n_identities: int = 4,
                       labels: Iterable[str] = ("bareteeth", "cheeks_in", "eyebrow"), encoding: str = "mixed",
                       gaps: bool = False, seed: int = 0) -> Fixture:
    """A CoMA-layout folder: ``<root>/FaceTalk_…_TA/<expr>/<expr>.NNNNNN.ply`` (metres).

    ``encoding``: ``ascii``, ``binary_little_endian``, ``binary_big_endian`` or ``mixed`` (the
    three in turn, file by file). ``gaps`` drops one capture inside some rises.
    """
    root = Path(root)
    labels = list(labels)
    idents = [f"FaceTalk_1707{25 + i:02d}_{137 + i:05d}_TA" for i in range(n_identities)]
    fmts = ["ascii", "binary_little_endian", "binary_big_endian"]

    def fmt_of(i: int, k: int, n: int) -> str:
        return fmts[(i + k + n) % 3] if encoding == "mixed" else encoding

    return _write(root, idents, labels, lambda lab, n: f"{lab}.{n:06d}.ply", fmt_of, seed=seed, gaps=gaps,
                  n_identities=n_identities, extra_props=False)


def write_florence4d_fixture(root: str | os.PathLike, n_identities: int = 4,
                             labels: Iterable[str] = ("Angry", "Happy", "Surprise"), seed: int = 1) -> Fixture:
    """A Florence4D-layout folder: ``<root>/<id>/<Expr>/<Expr>_<frame>.ply``, binary little-endian,
    unpadded frame numbers (so ``_10`` sorts after ``_9`` only under a natural sort) and vertex
    normals as extra properties (metres)."""
    root = Path(root)
    labels = list(labels)
    idents = [f"{i:03d}" for i in range(1, n_identities + 1)]
    return _write(root, idents, labels, lambda lab, n: f"{lab}_{n}.ply", lambda i, k, n: "binary_little_endian",
                  seed=seed, gaps=False, n_identities=n_identities, extra_props=True)


# --------------------------------------------------------------------------- tiny dataset
def _grid_mesh(n: int, size_mm: float) -> tuple[np.ndarray, np.ndarray]:
    u = np.linspace(-0.5, 0.5, n)
    xx, yy = np.meshgrid(u, u)
    verts = np.stack([xx.ravel() * size_mm, yy.ravel() * size_mm * 1.2, np.zeros(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return verts.astype(np.float32), faces.astype(np.int64)


@lru_cache(maxsize=4)
def tiny_dataset(n_identities: int = 8, n_labels: int = 3, grid: int = 24, seed: int = 0,
                 n_landmarks: int = 68) -> Dataset:
    """A small deterministic 4D dataset for conformance checks and unit tests.

    A curved ``grid x grid`` surface (~150 mm tall) per identity, ``n_labels`` expressions made of
    smooth localised displacements plus a rotation of the lower part (non-linear), sequences of
    several lengths and frame rates, n2e and n2e2n. Not a face; use ``synthetic`` for that.
    """
    rng = np.random.default_rng(seed)
    base, faces = _grid_mesh(grid, 120.0)
    step = max(1, (grid * grid) // n_landmarks)
    lmk = np.linspace(0, grid * grid - 1, n_landmarks).round().astype(np.int64)
    lmk = np.unique(lmk)
    if len(lmk) < n_landmarks:
        raise ValueError("grid too small for the requested landmarks")
    topo = Topology.from_vertex_landmarks(faces, len(base), lmk, name=f"tiny{grid}")
    labels = [f"expr{k}" for k in range(n_labels)]
    x, y = base[:, 0] / 60.0, base[:, 1] / 72.0
    centres = rng.uniform(-0.6, 0.6, size=(n_labels, 2))
    dirs = rng.normal(size=(n_labels, 3)) * np.array([4.0, 4.0, 8.0])
    jaw = rng.uniform(0.05, 0.25, size=n_labels)
    seqs: list[Sequence] = []
    neutrals: dict[str, np.ndarray] = {}
    del step
    for i in range(n_identities):
        ident = f"id{i:02d}"
        width, height, bump = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(15, 35)
        phase = rng.uniform(0, 2 * np.pi, 2)
        neutral = base * np.array([width, height, 1.0], dtype=np.float32)
        neutral[:, 2] = bump * np.exp(-(x**2 + y**2) * 1.5) + 2.0 * np.sin(3 * x + phase[0]) * np.cos(2 * y + phase[1])
        neutral = neutral.astype(np.float32)
        neutrals[ident] = neutral
        style = rng.uniform(0.7, 1.3)
        for k, lab in enumerate(labels):
            for rep, kind in enumerate(("n2e", "n2e2n")):
                fps = float(rng.choice([20.0, 30.0]))
                duration = rng.uniform(0.7, 1.3)
                t_len = int(round(duration * fps)) + 1
                t = np.linspace(0, 1, t_len)
                if kind == "n2e":
                    w = np.clip(t / rng.uniform(0.6, 0.9), 0, 1)
                else:
                    w = np.sin(np.pi * t) ** 2
                w = w * w * (3 - 2 * w)
                blob = np.exp(-((x - centres[k, 0]) ** 2 + (y - centres[k, 1]) ** 2) / 0.15)[:, None]
                frames = np.empty((t_len, len(base), 3), dtype=np.float32)
                lower = y < -0.1
                for f in range(t_len):
                    v = neutral + style * w[f] * blob * dirs[k]
                    ang = style * w[f] * jaw[k] * height
                    pivot = np.array([0.0, -0.1 * 72.0 * height, -10.0])
                    rel = v[lower] - pivot
                    c, s = np.cos(ang), np.sin(ang)
                    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
                    v[lower] = rel @ rot.T + pivot
                    frames[f] = v
                frames[0] = neutral
                seqs.append(Sequence(ident, lab, frames, fps, kind, topo, {"repetition": rep}))
    return Dataset("tiny", topo, seqs, labels, neutrals=neutrals)
