"""Another topology for the same surface: what the foreign-topology path is measured on.

:func:`retriangulate` turns a mesh into a different triangulation of (almost) the same surface
(Loop-free midpoint subdivision, quadric decimation with ``fast_simplification``, every new vertex
projected back onto the original surface, vertex order shuffled) and returns where each new vertex
sits on the original faces, so anything defined on the original vertices can be read at the new ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Retriangulated:
    """``vertices [W, 3]``, ``faces [G, 3]``; new vertex ``w`` lies at ``bary[w]`` on original face
    ``face_idx[w]``."""

    vertices: np.ndarray
    faces: np.ndarray
    face_idx: np.ndarray
    bary: np.ndarray

    def sample(self, values: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-original-vertex ``values [..., V, C]`` read at the new vertices: ``[..., W, C]``."""
        corners = faces[self.face_idx]  # [W, 3]
        return np.einsum("...wkc,wk->...wc", values[..., corners, :], self.bary)


def retriangulate(vertices: np.ndarray, faces: np.ndarray, reduction: float = 0.6, subdivisions: int = 1,
                  seed: int = 0) -> Retriangulated:
    """A shuffled re-triangulation of ``vertices [V, 3]`` / ``faces [F, 3]`` (see the module doc).

    ``reduction`` is the fraction of the subdivided mesh's faces the decimation removes.
    """
    import fast_simplification
    import trimesh

    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    v2, f2 = fast_simplification.simplify(v.astype(np.float32), f.astype(np.int32), target_reduction=reduction)
    src = trimesh.Trimesh(vertices, faces, process=False)
    closest, _, tri = trimesh.proximity.closest_point(src, np.asarray(v2, np.float64))
    bary = trimesh.triangles.points_to_barycentric(src.triangles[tri], closest)
    bary = np.clip(bary, 0.0, None)
    bary /= bary.sum(1, keepdims=True)
    used = np.zeros(len(v2), bool)
    used[np.asarray(f2).ravel()] = True  # decimation may leave unreferenced vertices
    keep = np.flatnonzero(used)
    perm = np.random.default_rng(seed).permutation(len(keep))
    order = keep[perm]                   # new vertex i is old vertex order[i]
    remap = np.full(len(v2), -1, np.int64)
    remap[order] = np.arange(len(order))
    exact = np.einsum("wkc,wk->wc", np.asarray(vertices, np.float64)[np.asarray(faces)[tri]], bary)
    return Retriangulated(exact[order], remap[np.asarray(f2, np.int64)], tri[order].astype(np.int64), bary[order])
