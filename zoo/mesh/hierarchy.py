"""A mesh hierarchy: levels of decimated meshes, sampling matrices and spirals, cached on disk.

Level 0 is the full mesh. ``down[i]`` maps level ``i`` to ``i + 1`` and ``up[i]`` maps level
``i + 1`` back to ``i``. The hierarchy is built from a template (e.g. the mean training neutral) and
cached under ``cache_dir("mesh", topology_hash)`` keyed by the template and the settings.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Sequence as Seq

import numpy as np
import scipy.sparse as sp

from fc4dfs.datasets.storage import atomic_write_bytes, cache_dir, stable_hash
from fc4dfs.zoo.mesh.sampling import decimate, downsampling_matrix, upsampling_matrix
from fc4dfs.zoo.mesh.spiral import default_reference, spiral_indices

HIERARCHY_VERSION = "1"
#: Neural3DMM's defaults for the 5 levels of FLAME
DEFAULT_FACTORS = (4, 4, 4, 4)
DEFAULT_STEPS = (2, 2, 1, 1, 1)
DEFAULT_DILATION = (2, 2, 1, 1, 1)


@dataclass
class MeshHierarchy:
    """Meshes per level plus the matrices and spirals between and on them."""

    vertices: list[np.ndarray]  # [V_i, 3] float32 template positions
    faces: list[np.ndarray]  # [F_i, 3] int64
    down: list[sp.csr_matrix]  # [V_{i+1}, V_i]
    up: list[sp.csr_matrix]  # [V_i, V_{i+1}]
    spirals: list[np.ndarray]  # [V_i, S_i] int64, padding index V_i

    @property
    def num_levels(self) -> int:
        return len(self.vertices)

    @property
    def sizes(self) -> list[int]:
        return [len(v) for v in self.vertices]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array mapping (for npz caches and checkpoints)."""
        out: dict[str, np.ndarray] = {}
        for i in range(self.num_levels):
            out[f"v{i}"] = self.vertices[i].astype(np.float32)
            out[f"f{i}"] = self.faces[i].astype(np.int64)
            out[f"s{i}"] = self.spirals[i].astype(np.int64)
        for i, (d, u) in enumerate(zip(self.down, self.up)):
            for name, m in (("d", d), ("u", u)):
                coo = m.tocoo()
                out[f"{name}{i}_idx"] = np.stack([coo.row, coo.col]).astype(np.int64)
                out[f"{name}{i}_val"] = coo.data.astype(np.float32)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "MeshHierarchy":
        n = 0
        while f"v{n}" in arrays:
            n += 1
        if n == 0:
            raise ValueError("no mesh levels in the given arrays")
        verts = [np.asarray(arrays[f"v{i}"], dtype=np.float32) for i in range(n)]
        sizes = [len(v) for v in verts]

        def mat(name: str, shape: tuple[int, int]) -> sp.csr_matrix:
            idx = np.asarray(arrays[f"{name}_idx"])
            return sp.csr_matrix((np.asarray(arrays[f"{name}_val"]), (idx[0], idx[1])), shape=shape)

        return cls(verts, [np.asarray(arrays[f"f{i}"], dtype=np.int64) for i in range(n)],
                   [mat(f"d{i}", (sizes[i + 1], sizes[i])) for i in range(n - 1)],
                   [mat(f"u{i}", (sizes[i], sizes[i + 1])) for i in range(n - 1)],
                   [np.asarray(arrays[f"s{i}"], dtype=np.int64) for i in range(n)])


def _per_level(values: Seq[int], n: int) -> list[int]:
    vals = list(values)
    return [vals[min(i, len(vals) - 1)] for i in range(n)]


def build_hierarchy(vertices: np.ndarray, faces: np.ndarray, factors: Seq[float] = DEFAULT_FACTORS,
                    steps: Seq[int] = DEFAULT_STEPS, dilation: Seq[int] = DEFAULT_DILATION,
                    min_vertices: int = 12) -> MeshHierarchy:
    """Decimate by each factor in turn, stopping early (fewer levels) on small meshes.

    A level is added only if it keeps at least ``min_vertices`` vertices and decimation actually
    shrank the mesh (by 1.5x or more), so a few hundred vertices yield fewer levels, never a crash.
    """
    verts = [np.asarray(vertices, dtype=np.float64)]
    faces_l = [np.asarray(faces, dtype=np.int64)]
    down: list[sp.csr_matrix] = []
    up: list[sp.csr_matrix] = []
    for factor in factors:
        cur_v, cur_f = verts[-1], faces_l[-1]
        if len(cur_v) / factor < min_vertices or len(cur_f) < 8:
            break
        kept, coarse_f = decimate(cur_v, cur_f, factor)
        if len(kept) < min_vertices or len(kept) * 1.5 > len(cur_v):
            break
        coarse_v = cur_v[kept]
        down.append(downsampling_matrix(kept, len(cur_v)))
        up.append(upsampling_matrix(cur_v, coarse_v, coarse_f, kept))
        verts.append(coarse_v)
        faces_l.append(coarse_f)
    n = len(verts)
    st, dl = _per_level(steps, n), _per_level(dilation, n)
    ref = default_reference(verts[0])
    spirals = []
    for i in range(n):
        # the reference vertex of a coarse level is the kept vertex nearest the level-0 reference
        r = int(np.argmin(np.linalg.norm(verts[i] - verts[0][ref], axis=1)))
        spirals.append(spiral_indices(verts[i], faces_l[i], st[i], dl[i], reference=r))
    return MeshHierarchy([v.astype(np.float32) for v in verts], faces_l, down, up, spirals)


def template_hash(vertices: np.ndarray) -> str:
    """Hash of template positions rounded to 1 micrometre."""
    return hashlib.sha256(np.round(np.asarray(vertices, dtype=np.float64), 3).tobytes()).hexdigest()[:16]


def cached_hierarchy(topology_hash: str, vertices: np.ndarray, faces: np.ndarray,
                     factors: Seq[float] = DEFAULT_FACTORS, steps: Seq[int] = DEFAULT_STEPS,
                     dilation: Seq[int] = DEFAULT_DILATION, min_vertices: int = 12) -> MeshHierarchy:
    """:func:`build_hierarchy`, memoised on disk per topology, template and settings."""
    key = stable_hash({"v": HIERARCHY_VERSION, "template": template_hash(vertices),
                       "factors": [float(f) for f in factors], "steps": list(steps),
                       "dilation": list(dilation), "min_vertices": int(min_vertices)})
    path = cache_dir("mesh", topology_hash) / f"hierarchy-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return MeshHierarchy.from_arrays({k: z[k] for k in z.files})
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    h = build_hierarchy(vertices, faces, factors, steps, dilation, min_vertices)
    buf = io.BytesIO()
    np.savez(buf, **h.to_arrays())
    atomic_write_bytes(path, buf.getvalue())
    return h
