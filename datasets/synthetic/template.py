"""The shared face template: a canonical (u, v) grid with mouth and eye slits and 68 landmarks.

Every identity of the synthetic dataset is a smooth map of this one template, so all meshes
share connectivity and landmark semantics. ``u`` runs across the face (-1 = the subject's right
side, shown on the image's left; +1 = the subject's left), ``v`` runs up (-1 = under the chin,
+1 = the hairline). Three rows are cut into slits with separate upper and lower vertices: the
mouth (lips that can open) and the two eyes (lids).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fc4dfs.datasets.base import Topology

#: grid columns x rows per resolution (odd columns: a vertex column runs down the midline)
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "small": (21, 23),     # ~0.5 k vertices: unit tests
    "default": (39, 43),   # ~1.7 k vertices
    "flame": (69, 73),     # ~5.0 k vertices, like FLAME's 5,023
}

# canonical positions of the facial features in the (u, v) domain
V_MOUTH = -0.33          # mouth slit row
U_MOUTH = 0.27           # mouth corner (exact column)
V_EYE = 0.27             # eye slit row
U_EYE_IN, U_EYE_OUT = 0.16, 0.47   # target inner / outer eye corners (nearest columns are used)
V_BROW = 0.44
V_NOSE_TIP = 0.0
V_NOSE_BASE = -0.1
V_LIP_UP = 0.07          # height of the upper lip's vermilion above the slit
V_LIP_LOW = 0.09         # height of the lower lip's vermilion below the slit

NONE, MOUTH, EYE_R, EYE_L = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class Template:
    """Canonical coordinates of every vertex plus the mesh topology."""

    resolution: str
    u: np.ndarray        # [V] float64
    v: np.ndarray        # [V] float64
    side: np.ndarray     # [V] int8: +1 upper copy of a slit vertex, -1 lower copy, 0 elsewhere
    slit: np.ndarray     # [V] int8: which slit a vertex's row segment belongs to (NONE for others)
    faces: np.ndarray    # [F, 3] int64
    topology: Topology
    eye_corners: tuple[float, float]  # (inner, outer) |u| of the eye slit corners
    landmark_uv: np.ndarray           # [68, 2] canonical landmark positions
    landmark_side: np.ndarray         # [68] int8

    @property
    def num_vertices(self) -> int:
        return len(self.u)

    @property
    def eye_centre(self) -> float:
        return 0.5 * (self.eye_corners[0] + self.eye_corners[1])

    @property
    def eye_half_width(self) -> float:
        return 0.5 * (self.eye_corners[1] - self.eye_corners[0])


def _axis(n: int, centre_density: float) -> np.ndarray:
    """``n`` symmetric samples of [-1, 1], denser in the middle (derivative ``centre_density`` at 0)."""
    s = np.linspace(-1.0, 1.0, n)
    return s * (centre_density + (1.0 - centre_density) * s * s)


def _snap(values: np.ndarray, target: float) -> int:
    i = int(np.argmin(np.abs(values - target)))
    values[i] = target
    return i


def _check_monotone(values: np.ndarray, what: str) -> None:
    d = np.diff(values)
    if (d <= 0.25 * d.mean()).any():
        raise ValueError(f"synthetic template: {what} grid folds after snapping features")


@lru_cache(maxsize=8)
def build_template(resolution: str = "default") -> Template:
    """The template mesh for ``resolution`` (one of :data:`RESOLUTIONS`)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown synthetic resolution {resolution!r}; choose one of "
                         f"{', '.join(RESOLUTIONS)}")
    nu, nv = RESOLUTIONS[resolution]
    us = _axis(nu, 0.62)
    vs = _axis(nv, 0.72)
    j_mouth = _snap(vs, V_MOUTH)
    j_eye = _snap(vs, V_EYE)
    c = nu // 2
    i_mouth = _snap(us, U_MOUTH)
    us[2 * c - i_mouth] = -U_MOUTH
    _check_monotone(us, "column")
    _check_monotone(vs, "row")
    i_eye_in = int(np.argmin(np.abs(us - U_EYE_IN)))
    i_eye_out = int(np.argmin(np.abs(us - U_EYE_OUT)))
    if i_eye_out - i_eye_in < 2 or i_mouth - c < 1:
        raise ValueError(f"resolution {resolution!r} is too coarse for the eye and mouth slits")

    grid = np.arange(nv * nu).reshape(nv, nu)  # grid[j, i]
    uu, vv = np.meshgrid(us, vs)
    u = [uu.ravel()]
    v = [vv.ravel()]
    side = np.zeros(nv * nu, dtype=np.int8)
    slit = np.zeros(nv * nu, dtype=np.int8)

    # slit segments: (row, interior columns, slit id)
    segments = [
        (j_mouth, list(range(2 * c - i_mouth + 1, i_mouth)), MOUTH),
        (j_eye, list(range(2 * c - i_eye_out + 1, 2 * c - i_eye_in)), EYE_R),
        (j_eye, list(range(i_eye_in + 1, i_eye_out)), EYE_L),
    ]
    lower_copy: dict[int, int] = {}
    next_id = nv * nu
    lower_side, lower_slit = [], []
    for row, cols, sid in segments:
        for i in cols:
            orig = int(grid[row, i])
            side[orig] = 1
            slit[orig] = sid
            lower_copy[orig] = next_id
            u.append(np.array([us[i]]))
            v.append(np.array([vs[row]]))
            lower_side.append(-1)
            lower_slit.append(sid)
            next_id += 1
    u = np.concatenate(u)
    v = np.concatenate(v)
    side = np.concatenate([side, np.array(lower_side, dtype=np.int8)])
    slit = np.concatenate([slit, np.array(lower_slit, dtype=np.int8)])
    slit_rows = {j_mouth, j_eye}

    faces = []
    for j in range(nv - 1):
        for i in range(nu - 1):
            a, b = int(grid[j, i]), int(grid[j, i + 1])
            cc, d = int(grid[j + 1, i + 1]), int(grid[j + 1, i])
            if j + 1 in slit_rows:  # the quad's top edge lies on a slit row: use lower copies
                cc, d = lower_copy.get(cc, cc), lower_copy.get(d, d)
            if i < c:  # mirror the diagonal across the midline for a symmetric mesh
                faces += [(a, b, cc), (a, cc, d)]
            else:
                faces += [(a, b, d), (b, cc, d)]
    faces = np.asarray(faces, dtype=np.int64)

    eye_corners = (float(us[i_eye_in]), float(us[i_eye_out]))
    lm_uv, lm_side = _landmark_layout(eye_corners)
    fidx, bary = _locate(u, v, side, faces, lm_uv, lm_side)
    topo = Topology(faces, len(u), fidx, bary, name=f"synthetic-{resolution}")
    return Template(resolution, u, v, side, slit, faces, topo, eye_corners, lm_uv, lm_side)


def _landmark_layout(eye_corners: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The iBUG-68 landmarks in canonical coordinates, with the slit side they sit on."""
    pts: list[tuple[float, float, int]] = []
    # 0-16 jaw contour: from the subject's right temple-jaw junction over the chin to the left
    for th in np.linspace(0.0, np.pi, 17):
        pts.append((-0.95 * np.cos(th), 0.12 - 0.98 * np.sin(th) ** 1.15, 0))
    # 17-21 right brow (outer to inner), 22-26 left brow (inner to outer)
    brow_u = np.linspace(0.64, 0.14, 5)
    arch = lambda uu: V_BROW + 0.045 * np.sin(np.pi * (uu - 0.1) / 0.6) - 0.02  # noqa: E731
    pts += [(-b, arch(b), 0) for b in brow_u]
    pts += [(b, arch(b), 0) for b in brow_u[::-1]]
    # 27-30 nose bridge down to the tip, 31-35 nose base (right to left)
    pts += [(0.0, vv, 0) for vv in (V_EYE + 0.02, 0.18, 0.09, V_NOSE_TIP)]
    pts += [(uu, V_NOSE_BASE + dv, 0) for uu, dv in
            ((-0.13, 0.025), (-0.065, -0.005), (0.0, -0.015), (0.065, -0.005), (0.13, 0.025))]
    # 36-41 right eye, 42-47 left eye (corners on the slit ends, lids on the slit copies)
    ein, eout = eye_corners
    ec, hw = 0.5 * (ein + eout), 0.5 * (eout - ein)
    q = 0.36 * hw
    pts += [(-eout, V_EYE, 0), (-(ec + q), V_EYE, 1), (-(ec - q), V_EYE, 1), (-ein, V_EYE, 0),
            (-(ec - q), V_EYE, -1), (-(ec + q), V_EYE, -1)]
    pts += [(ein, V_EYE, 0), (ec - q, V_EYE, 1), (ec + q, V_EYE, 1), (eout, V_EYE, 0),
            (ec + q, V_EYE, -1), (ec - q, V_EYE, -1)]
    # 48-59 outer lip contour, 60-67 inner lip contour
    m = U_MOUTH
    up = lambda uu: V_MOUTH + V_LIP_UP * (0.85 + 0.3 * np.exp(-((abs(uu) - 0.32 * m) / (0.2 * m)) ** 2))  # noqa: E731
    low = lambda uu: V_MOUTH - V_LIP_LOW * np.sqrt(max(0.0, 1 - (uu / (1.08 * m)) ** 2))  # noqa: E731
    outer_up = [-0.62 * m, -0.3 * m, 0.0, 0.3 * m, 0.62 * m]
    outer_low = [0.6 * m, 0.3 * m, 0.0, -0.3 * m, -0.6 * m]
    pts.append((-m, V_MOUTH, 0))
    pts += [(uu, up(uu) if uu else V_MOUTH + V_LIP_UP * 0.9, 0) for uu in outer_up]
    pts.append((m, V_MOUTH, 0))
    pts += [(uu, low(uu), 0) for uu in outer_low]
    inner = 0.93 * m
    pts.append((-inner, V_MOUTH, 1))
    pts += [(uu, V_MOUTH, 1) for uu in (-0.42 * m, 0.0, 0.42 * m)]
    pts.append((inner, V_MOUTH, 1))
    pts += [(uu, V_MOUTH, -1) for uu in (0.42 * m, 0.0, -0.42 * m)]
    arr = np.asarray(pts, dtype=np.float64)
    if len(arr) != 68:
        raise AssertionError(f"landmark layout has {len(arr)} points")
    return arr[:, :2].copy(), arr[:, 2].astype(np.int8)


def _locate(u: np.ndarray, v: np.ndarray, side: np.ndarray, faces: np.ndarray,
            pts: np.ndarray, pts_side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face index and barycentric weights of each canonical point (slit side respected)."""
    a = np.stack([u[faces[:, 0]], v[faces[:, 0]]], 1)
    b = np.stack([u[faces[:, 1]], v[faces[:, 1]]], 1)
    c = np.stack([u[faces[:, 2]], v[faces[:, 2]]], 1)
    # a face is on the lower side of a slit if it uses a lower copy, on the upper side if it
    # uses an upper copy; faces touching no slit vertex are neutral
    fs = side[faces]
    face_lower = (fs == -1).any(1)
    face_upper = (fs == 1).any(1)
    fidx = np.empty(len(pts), dtype=np.int64)
    bary = np.empty((len(pts), 3), dtype=np.float64)
    for k, (p, s) in enumerate(zip(pts, pts_side)):
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        w0 = 1.0 - w1 - w2
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        if s == 1:
            inside &= ~face_lower
        elif s == -1:
            inside &= ~face_upper
        hits = np.nonzero(inside)[0]
        if len(hits) == 0:
            raise ValueError(f"landmark {k} at canonical {tuple(p)} is outside the template")
        f = int(hits[0])
        w = np.clip(np.array([w0[f], w1[f], w2[f]]), 0.0, 1.0)
        fidx[k], bary[k] = f, w / w.sum()
    return fidx, bary.astype(np.float32)
