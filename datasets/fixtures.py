"""Small datasets written in the exact CoMA and Florence4D on-disk layouts, for tests and demos.

The real datasets cannot be redistributed, so tests write look-alikes: the faces of
:func:`fc4dfs.plugins.testing.tiny_dataset` (a few hundred vertices), in metres, as PLY files named
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
from pathlib import Path
from typing import Iterable

import numpy as np

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
    from fc4dfs.plugins.testing import tiny_dataset

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
