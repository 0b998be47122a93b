"""Mesh down-sampling (quadric edge-collapse decimation) and CoMA-style up-sampling matrices.

Down-sampling keeps a subset of the vertices (those that survive decimation, at their original
positions), so the down-sampling matrix ``D`` is a selection. Up-sampling ``U`` copies kept
vertices and places each removed vertex at the barycentric coordinates of its projection on the
closest triangle of the coarse mesh (Ranjan et al., CoMA).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree


def decimate(vertices: np.ndarray, faces: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation to about ``1/factor`` of the faces.

    Returns ``(kept, coarse_faces)``: ``kept[j]`` is the fine index of coarse vertex ``j`` and
    ``coarse_faces`` index coarse vertices. Vertices in no face are dropped.
    """
    import fast_simplification

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if factor <= 1:
        raise ValueError(f"decimation factor must be > 1, got {factor}")
    target = max(1, int(round(len(faces) / factor)))
    _, coarse_faces, collapses = fast_simplification.simplify(
        vertices, faces.astype(np.int32), target_count=target, return_collapses=True)
    _, _, mapping = fast_simplification.replay_simplification(vertices, faces.astype(np.int32), collapses)
    removed = np.zeros(len(vertices), dtype=bool)
    if len(collapses):
        removed[np.asarray(collapses)[:, 1]] = True
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.reshape(-1)] = True
    survivors = np.nonzero(~removed & used)[0]
    coarse_of = np.asarray(mapping, dtype=np.int64)[survivors]
    n_coarse = int(coarse_faces.max()) + 1 if len(coarse_faces) else 0
    kept = np.full(n_coarse, -1, dtype=np.int64)
    kept[coarse_of[coarse_of < n_coarse]] = survivors[coarse_of < n_coarse]
    if (kept < 0).any():
        raise RuntimeError("decimation produced a coarse vertex that matches no surviving vertex")
    return kept, np.asarray(coarse_faces, dtype=np.int64)


def downsampling_matrix(kept: np.ndarray, num_fine: int) -> sp.csr_matrix:
    """``D`` [m, n]: row ``j`` selects fine vertex ``kept[j]``."""
    m = len(kept)
    return sp.csr_matrix((np.ones(m, dtype=np.float32), (np.arange(m), kept)), shape=(m, num_fine))


def closest_barycentric(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Closest point on triangles ``(a, b, c)`` to ``points`` (all ``[N, 3]``), row-wise.

    Returns ``(bary [N, 3], squared distance [N])`` with barycentric weights >= 0 summing to 1.
    Degenerate triangles fall back to their edges.
    """
    p = np.asarray(points, dtype=np.float64)
    ab, ac, ap = b - a, c - a, p - a
    d00 = np.einsum("ij,ij->i", ab, ab)
    d01 = np.einsum("ij,ij->i", ab, ac)
    d11 = np.einsum("ij,ij->i", ac, ac)
    d20 = np.einsum("ij,ij->i", ap, ab)
    d21 = np.einsum("ij,ij->i", ap, ac)
    den = d00 * d11 - d01 * d01
    ok = den > 1e-12 * np.maximum(d00 * d11, 1e-30)
    safe = np.where(ok, den, 1.0)
    v = (d11 * d20 - d01 * d21) / safe
    w = (d00 * d21 - d01 * d20) / safe
    u = 1.0 - v - w
    inside = ok & (u >= 0) & (v >= 0) & (w >= 0)
    best = np.full(len(p), np.inf)
    bary = np.zeros((len(p), 3))
    proj = u[:, None] * a + v[:, None] * b + w[:, None] * c
    dist = np.sum((p - proj) ** 2, axis=1)
    best[inside] = dist[inside]
    bary[inside] = np.stack([u, v, w], 1)[inside]
    for i, j, s, e in ((0, 1, a, b), (1, 2, b, c), (2, 0, c, a)):
        se = e - s
        ln = np.einsum("ij,ij->i", se, se)
        t = np.clip(np.einsum("ij,ij->i", p - s, se) / np.where(ln > 0, ln, 1.0), 0.0, 1.0)
        q = s + t[:, None] * se
        dq = np.sum((p - q) ** 2, axis=1)
        better = ~inside & (dq < best)
        best[better] = dq[better]
        bw = np.zeros((len(p), 3))
        bw[:, i] = 1.0 - t
        bw[:, j] = t
        bary[better] = bw[better]
    return bary, best


def upsampling_matrix(fine_vertices: np.ndarray, coarse_vertices: np.ndarray, coarse_faces: np.ndarray,
                      kept: np.ndarray, candidates: int = 16) -> sp.csr_matrix:
    """``U`` [n, m]: identity on kept vertices, barycentric weights elsewhere (CoMA).

    Each removed vertex is projected on the closest of the ``candidates`` coarse triangles whose
    centroids are nearest to it. With no coarse faces, a removed vertex copies its nearest coarse
    vertex.
    """
    fine = np.asarray(fine_vertices, dtype=np.float64)
    coarse = np.asarray(coarse_vertices, dtype=np.float64)
    n, m = len(fine), len(coarse)
    is_kept = np.zeros(n, dtype=bool)
    is_kept[kept] = True
    rows, cols, vals = [kept], [np.arange(m)], [np.ones(m)]
    rest = np.nonzero(~is_kept)[0]
    if len(rest):
        p = fine[rest]
        if len(coarse_faces) == 0:
            _, j = cKDTree(coarse).query(p)
            rows.append(rest)
            cols.append(np.asarray(j))
            vals.append(np.ones(len(rest)))
        else:
            tri = coarse[coarse_faces]  # [F, 3, 3]
            k = min(candidates, len(coarse_faces))
            _, cand = cKDTree(tri.mean(1)).query(p, k=k)
            cand = np.asarray(cand).reshape(len(p), k)
            best_d = np.full(len(p), np.inf)
            best_f = np.zeros(len(p), dtype=np.int64)
            best_b = np.zeros((len(p), 3))
            for c in range(k):
                f = cand[:, c]
                bary, d = closest_barycentric(p, tri[f, 0], tri[f, 1], tri[f, 2])
                better = d < best_d
                best_d[better], best_f[better], best_b[better] = d[better], f[better], bary[better]
            rows.append(np.repeat(rest, 3))
            cols.append(coarse_faces[best_f].reshape(-1))
            vals.append(best_b.reshape(-1))
    u = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, m))
    u = u.tocsr()
    u.sum_duplicates()
    u.eliminate_zeros()
    return u.astype(np.float32)
