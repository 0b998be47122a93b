"""Spiral vertex orderings (Bouritsas et al., Neural 3D Morphable Models).

A spiral around vertex ``v`` lists ``v``, then its 1-ring in counter-clockwise order starting from
the neighbour on the shortest path to a fixed reference vertex, then the following rings, each
walked outwards in the same rotational sense. Spirals are dilated, then padded or truncated to a
fixed length. Padding uses the index ``V`` (one past the last vertex): spiral layers append a zero
feature row there, so boundary vertices, isolated vertices and non-manifold fans never crash.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

#: marks the open side of a boundary vertex's 1-ring (becomes the padding index)
GAP = -1


def ordered_fans(faces: np.ndarray, num_vertices: int) -> list[list[int]]:
    """Each vertex's neighbours in counter-clockwise order around it (faces' winding).

    A closed fan is a cycle; an open (boundary) fan is a chain followed by :data:`GAP`. Several
    chains (non-manifold vertices) are concatenated with a GAP after each; neighbours reached by
    no fan edge are appended at the end. Deterministic for a given face array.
    """
    faces = np.asarray(faces, dtype=np.int64)
    # at corner a of face (a, b, c) the fan edge goes b -> c (counter-clockwise around a)
    centre = faces.reshape(-1)
    src = faces[:, [1, 2, 0]].reshape(-1)
    dst = faces[:, [2, 0, 1]].reshape(-1)
    order = np.lexsort((dst, src, centre))
    centre, src, dst = centre[order], src[order], dst[order]
    starts = np.searchsorted(centre, np.arange(num_vertices + 1))
    fans: list[list[int]] = []
    for v in range(num_vertices):
        lo, hi = starts[v], starts[v + 1]
        if lo == hi:
            fans.append([])
            continue
        nxt: dict[int, int] = {}
        for s, d in zip(src[lo:hi].tolist(), dst[lo:hi].tolist()):
            nxt.setdefault(s, d)
        has_pred = set(nxt.values())
        remaining = dict(nxt)
        fan: list[int] = []
        seen: set[int] = set()
        # open chains first (they start at a vertex with no predecessor), then closed cycles
        heads = sorted(s for s in nxt if s not in has_pred) + sorted(nxt)
        for head in heads:
            if head not in remaining or head in seen:
                continue
            chain = [head]
            seen.add(head)
            cur = head
            closed = False
            while cur in remaining:
                nx = remaining.pop(cur)
                if nx == head:
                    closed = True
                    break
                if nx in seen:
                    break
                chain.append(nx)
                seen.add(nx)
                cur = nx
            fan.extend(chain)
            if not closed:
                fan.append(GAP)
        extra = sorted({d for d in nxt.values() if d not in seen} | {s for s in nxt if s not in seen})
        fan.extend(extra)
        fans.append(fan)
    return fans


def _reference_predecessors(vertices: np.ndarray, faces: np.ndarray, num_vertices: int,
                            reference: int) -> np.ndarray:
    """Predecessor of every vertex on its shortest edge path to ``reference`` (-9999 if none)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1) + 1e-9
    g = coo_matrix((np.concatenate([w, w]), (np.concatenate([e[:, 0], e[:, 1]]),
                                            np.concatenate([e[:, 1], e[:, 0]]))),
                   shape=(num_vertices, num_vertices)).tocsr()
    _, pred = dijkstra(g, directed=False, indices=reference, return_predecessors=True)
    return pred


def default_reference(vertices: np.ndarray) -> int:
    """A deterministic reference vertex: the one nearest the centroid."""
    c = vertices.mean(0)
    return int(np.argmin(np.linalg.norm(vertices - c, axis=1)))


def _rotate_cycle(cycle: list[int], first: int) -> list[int]:
    i = cycle.index(first)
    return cycle[i:] + cycle[:i]


def raw_spirals(vertices: np.ndarray, faces: np.ndarray, steps: int,
                reference: int | None = None) -> list[list[int]]:
    """Unpadded, undilated spirals ``[v, ring1..., ring_steps...]`` (GAP marks boundary gaps)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    n = len(vertices)
    fans = ordered_fans(faces, n)
    if reference is None:
        reference = default_reference(vertices)
    pred = _reference_predecessors(vertices, faces, n, reference) if len(faces) else np.full(n, -9999)
    spirals: list[list[int]] = []
    for v in range(n):
        fan = fans[v]
        nbrs = [u for u in fan if u != GAP]
        if not nbrs:
            spirals.append([v])
            continue
        start = int(pred[v])
        if start < 0 or start not in nbrs:
            start = min(nbrs, key=lambda u: (float(np.sum((vertices[u] - vertices[v]) ** 2)), u))
        ring = _rotate_cycle(fan, start)
        spiral = [v] + ring
        seen = {v, *nbrs}
        last = [u for u in ring if u != GAP]
        for _ in range(steps - 1):
            nxt: list[int] = []
            for u in last:
                fu = [w for w in fans[u] if w != GAP]
                if not fu:
                    continue
                # walk u's fan outwards: start just after the last neighbour already in the spiral
                k0 = 0
                for k in range(len(fu)):
                    if fu[k] in seen and fu[(k + 1) % len(fu)] not in seen:
                        k0 = (k + 1) % len(fu)
                        break
                for k in range(len(fu)):
                    w = fu[(k0 + k) % len(fu)]
                    if w not in seen:
                        seen.add(w)
                        nxt.append(w)
            if not nxt:
                break
            spiral.extend(nxt)
            last = nxt
        spirals.append(spiral)
    return spirals


def spiral_indices(vertices: np.ndarray, faces: np.ndarray, steps: int = 2, dilation: int = 1,
                   length: int | None = None, reference: int | None = None) -> np.ndarray:
    """Fixed-length spirals ``[V, S]`` (int64); padding entries hold ``V``.

    ``steps`` rings are gathered, every ``dilation``-th element after the centre is kept, and the
    length ``S`` defaults to mean + 2 std of the dilated lengths (as Neural3DMM chooses it).
    """
    if steps < 1 or dilation < 1:
        raise ValueError(f"spiral steps and dilation must be >= 1, got {steps}, {dilation}")
    n = len(vertices)
    raw = raw_spirals(vertices, faces, steps, reference)
    dil = [s[:1] + s[1::dilation] for s in raw]
    if length is None:
        lens = np.array([len(s) for s in dil], dtype=np.float64)
        length = int(lens.mean() + 2 * lens.std()) if n else 1
    length = max(1, int(length))
    out = np.full((n, length), n, dtype=np.int64)
    for v, s in enumerate(dil):
        s = [n if u == GAP else u for u in s[:length]]
        out[v, :len(s)] = s
    return out
