"""Fitting the suite's template to a user's face of any topology, and carrying motion back to it.

Pipeline (:func:`fit_face`):

1. **Units.** File units -> mm from the face's size (:func:`~.meshes.mm_per_unit`).
2. **Rigid alignment** of the user's mesh to the template (mean neutral of the training
   identities): with 68 user landmarks, the least-squares rotation + translation of the user's
   landmarks onto the template's (Kabsch / Umeyama without scale: identity keeps its size); without,
   the automatic method (:func:`_auto_align`: identity and principal-axis initialisations, each
   refined by rigid ICP, best cost kept). Its printed *confidence* is the fraction of template vertices within
   :data:`CONFIDENT_MM` of the user's surface after alignment; below :data:`MIN_CONFIDENCE` the fit
   is refused (give landmarks).
3. **Non-rigid registration** of the template to the user's surface:
   ``trimesh.registration.nricp_amberg`` (Amberg et al. 2007, optimal-step non-rigid ICP), with the
   template's barycentric landmark embedding constrained to the user's landmarks when given.
4. **Correspondence**: every user vertex's closest point on the registered template (a face and
   barycentric weights) and a falloff weight: 1 within :data:`FALLOFF_MM` [0] of the template's
   surface, smoothly 0 beyond [1] (back of head, neck, ears stay still).

:meth:`FaceFit.to_user` then maps template-topology frames to the user's vertices: each frame's
displacement from frame 0, interpolated barycentrically, weighted, rotated back into the user's pose
and scaled to the user's units, added to the user's own vertices (frame 0 is exactly the file).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.ownface.meshes import UserMesh, mm_per_unit
from fc4dfs.datasets.base import Topology

#: distance band (mm) from the registered template over which a user vertex's motion fades out
FALLOFF_MM: tuple[float, float] = (2.0, 25.0)
#: automatic alignment: a template vertex is "explained" within this distance (mm) of the user's surface
CONFIDENT_MM = 3.0
MIN_CONFIDENCE = 0.5
#: nricp_amberg steps (smoothness, landmark weight, normal weight, iterations), coarse to fine
NRICP_STEPS: tuple[tuple[float, float, float, int], ...] = (
    (0.01, 10, 0.5, 10), (0.02, 5, 0.5, 10), (0.03, 2.5, 0.5, 10), (0.01, 0.5, 0.0, 10))


@dataclass(eq=False)
class FaceFit:
    """The template registered to one user mesh and the user->template correspondence.

    Frames: template frame = ``rotation @ (mm_per_unit * x_user) + translation`` (mm).
    """

    user: UserMesh
    mm_per_unit: float
    units: str
    rotation: np.ndarray         # [3, 3]
    translation: np.ndarray      # [3]
    registered: np.ndarray       # [V, 3] float32 template topology in the template frame, mm
    face_idx: np.ndarray         # [Vu] template face of each user vertex's closest point
    bary: np.ndarray             # [Vu, 3]
    weight: np.ndarray           # [Vu] motion falloff in [0, 1]
    distance: np.ndarray         # [Vu] mm from the registered template
    info: dict[str, Any] = field(default_factory=dict)

    def to_template_frame(self, points: np.ndarray) -> np.ndarray:
        """User-file points ``[..., 3]`` -> template frame (mm)."""
        return (np.asarray(points, np.float64) * self.mm_per_unit) @ self.rotation.T + self.translation

    def to_user_points(self, points: np.ndarray) -> np.ndarray:
        """Template-frame points ``[..., 3]`` (mm) -> user file units and pose."""
        return ((np.asarray(points, np.float64) - self.translation) @ self.rotation) / self.mm_per_unit

    def to_user(self, frames: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Template-topology frames ``[T, V, 3]`` (template frame, mm; frame 0 the registered neutral)
        -> the user's vertices ``[T, Vu, 3]`` in the user's units and pose (frame 0 = the file)."""
        fr = np.asarray(frames, np.float64)
        disp = fr - fr[:1]
        corners = faces[self.face_idx]                       # [Vu, 3]
        d = np.einsum("tukc,uk->tuc", disp[:, corners], self.bary) * self.weight[None, :, None]
        return (self.user.vertices[None] + (d @ self.rotation) / self.mm_per_unit).astype(np.float32)


def read_landmarks(path: Path, count: int, mesh: UserMesh) -> np.ndarray:
    """User landmarks ``[count, 3]`` in file units from ``path``: ``count`` vertex indices (one int
    per line, or an int ``.npy``) or ``count`` points (three numbers per line, or a ``[count, 3]``
    ``.npy``). Raises :class:`UserError` naming the file for a wrong count or an index out of range."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"landmarks file {path} not found")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, ndmin=2, comments="#", delimiter=None)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read landmarks file {path}: {e}") from None
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        if len(arr) != count or not np.all(np.equal(np.mod(arr, 1), 0)):
            raise UserError(f"landmarks file {path}: expected {count} vertex indices or {count} x 3 points, "
                            f"got {arr.shape}")
        idx = arr.astype(np.int64)
        bad = idx[(idx < 0) | (idx >= len(mesh.vertices))]
        if len(bad):
            raise UserError(f"landmarks file {path}: vertex index {int(bad[0])} out of range for {mesh.path} "
                            f"({len(mesh.vertices)} vertices)")
        return mesh.vertices[idx].copy()
    if arr.shape != (count, 3) or not np.isfinite(arr).all():
        raise UserError(f"landmarks file {path}: expected {count} vertex indices or {count} x 3 finite points, "
                        f"got {arr.shape}")
    return arr.astype(np.float64)


def kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``R`` and translation ``t`` minimising ``sum |R src_i + t - dst_i|^2`` (no reflection)."""
    cs, cd = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    s = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
    r = vt.T @ s @ u.T
    return r, cd - r @ cs


def _auto_align(user_mm: np.ndarray, user_faces: np.ndarray, template: np.ndarray,
                faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation, translation (user mm -> template frame) and confidence without landmarks.

    Candidates: the identity (a mesh already facing like the template) and the four proper rotations
    taking the user's principal axes to the template's, each about the centroids; each refined by
    rigid ICP (``trimesh.registration.icp``, no scale, no reflection) of the user's vertices to the
    template's surface; the lowest ICP cost wins.
    """
    import trimesh

    tpl = trimesh.Trimesh(template, faces, process=False)
    rng = np.random.default_rng(0)
    pts = user_mm[rng.choice(len(user_mm), size=min(2000, len(user_mm)), replace=False)]
    cu, ct = user_mm.mean(0), template.mean(0)
    eu = np.linalg.eigh(np.cov((user_mm - cu).T))[1]
    et = np.linalg.eigh(np.cov((template - ct).T))[1]
    rotations = [np.eye(3)]
    for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
        r0 = et @ np.diag(signs) @ eu.T
        if np.linalg.det(r0) < 0:
            r0 = et @ np.diag(signs) @ np.diag([1, 1, -1]) @ eu.T
        rotations.append(r0)
    best = None
    for r0 in rotations:
        init = np.eye(4)
        init[:3, :3], init[:3, 3] = r0, ct - r0 @ cu
        matrix, _, cost = trimesh.registration.icp(pts, tpl, initial=init, threshold=1e-6, max_iterations=40,
                                                   reflection=False, scale=False)
        if best is None or cost < best[1]:
            best = (matrix, cost)
    r, t = best[0][:3, :3], best[0][:3, 3]
    aligned = trimesh.Trimesh(user_mm @ r.T + t, user_faces, process=False)
    _, dist, _ = trimesh.proximity.closest_point(aligned, template)
    return r, t, float((dist < CONFIDENT_MM).mean())


def _correspond(template: "Any", user: "Any") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest points (``[Vu, 3]``, distances, template faces) of the user's vertices on the template.

    A vertex on the user's boundary (a lip or eyelid edge) picks its template face from a point
    moved halfway to its neighbours' centroid, i.e. into its own side of the slit, and is then
    projected onto that face: where upper and lower lid or lip nearly touch, the plain closest
    point may lie on the wrong one.
    """
    import trimesh

    pts = np.asarray(user.vertices, np.float64)
    closest, dist, tri = trimesh.proximity.closest_point(template, pts)
    edges = np.sort(user.edges, axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(uniq[counts == 1])
    if len(boundary):
        nb_sum = np.zeros_like(pts)
        nb_cnt = np.zeros(len(pts))
        for a, b in ((0, 1), (1, 0)):
            np.add.at(nb_sum, uniq[:, a], pts[uniq[:, b]])
            np.add.at(nb_cnt, uniq[:, a], 1.0)
        inward = 0.5 * (pts[boundary] + nb_sum[boundary] / np.maximum(nb_cnt[boundary], 1)[:, None])
        _, _, tri_b = trimesh.proximity.closest_point(template, inward)
        on_face = trimesh.triangles.closest_point(template.triangles[tri_b], pts[boundary])
        closest[boundary], tri[boundary] = on_face, tri_b
        dist[boundary] = np.linalg.norm(on_face - pts[boundary], axis=1)
    return closest, dist, tri


def fit_face(user: UserMesh, template: np.ndarray, topology: Topology, landmarks: np.ndarray | None = None,
             units: str | None = None, log=print) -> FaceFit:
    """Register ``template`` (``[V, 3]`` mm, ``topology``) to ``user``; see the module doc.

    ``landmarks`` (``[L, 3]`` in the user's file units, the topology's landmark order) constrain the
    alignment and the registration. Raises :class:`UserError` for implausible sizes, landmarks far
    from the mesh, or an automatic alignment below :data:`MIN_CONFIDENCE`.
    """
    import trimesh

    scale, unit, detected = mm_per_unit(user, units)
    log(f"units: {unit} ({'detected from the face size' if detected else 'from --units'}: "
        f"bounding-box diagonal {user.extent * scale:.0f} mm)")
    user_mm = user.vertices * scale
    template = np.asarray(template, np.float64)
    tpl_lm = topology.landmarks(template[None])[0].astype(np.float64)
    info: dict[str, Any] = {"units": unit, "units_detected": detected}
    if landmarks is not None:
        lm_mm = np.asarray(landmarks, np.float64) * scale
        surf = trimesh.Trimesh(user_mm, user.faces, process=False)
        _, off, _ = trimesh.proximity.closest_point(surf, lm_mm)
        far = np.flatnonzero(off > 0.05 * user.extent * scale)
        if len(far):
            raise UserError(f"landmark {int(far[0])} lies {off[far[0]]:.1f} mm from the surface of {user.path}: "
                            "are the landmarks in the mesh's units and pose?")
        r, t = kabsch(lm_mm, tpl_lm)
        rms = float(np.sqrt((((lm_mm @ r.T + t) - tpl_lm) ** 2).sum(1).mean()))
        info.update(alignment="landmarks (Kabsch)", landmark_rms_mm=rms)
        log(f"rigid alignment from {len(lm_mm)} landmarks: {rms:.2f} mm RMS to the template's")
        target_lm = lm_mm @ r.T + t
    else:
        r, t, conf = _auto_align(user_mm, user.faces, template, topology.faces)
        info.update(alignment="automatic (principal axes + ICP)", confidence=conf)
        log(f"rigid alignment: automatic (principal axes + ICP), confidence {conf:.2f} "
            f"(template vertices within {CONFIDENT_MM:g} mm of the surface)")
        if conf < MIN_CONFIDENCE:
            raise UserError(f"automatic alignment of {user.path} to the template failed (confidence {conf:.2f} "
                            f"< {MIN_CONFIDENCE}): give --landmarks-file with {topology.num_landmarks} landmarks")
        target_lm = None
    aligned = trimesh.Trimesh(user_mm @ r.T + t, user.faces, process=False)
    # degenerate (zero-area) faces have no normal: the registration's target does without them
    target = trimesh.Trimesh(aligned.vertices, user.faces[aligned.area_faces > 1e-8 * aligned.area / len(user.faces)],
                             process=False)
    kw: dict[str, Any] = {}
    if target_lm is not None:
        from scipy.interpolate import RBFInterpolator

        # thin-plate spline from the template's landmarks to the user's: the registration starts
        # with features (lips, eyes, nose) already in place, and only has to settle on the surface
        warp = RBFInterpolator(tpl_lm, target_lm - tpl_lm, kernel="thin_plate_spline", smoothing=1.0)
        template = template + warp(template)
        kw = {"source_landmarks": (topology.lmk_face_idx, topology.lmk_bary.astype(np.float64)),
              "target_positions": target_lm}
    src = trimesh.Trimesh(template, topology.faces, process=False)
    registered = np.asarray(trimesh.registration.nricp_amberg(src, target, steps=[list(s) for s in NRICP_STEPS],
                                                              **kw), dtype=np.float64)
    reg_mesh = trimesh.Trimesh(registered, topology.faces, process=False)
    closest, dist, tri = _correspond(reg_mesh, aligned)
    bary = trimesh.triangles.points_to_barycentric(reg_mesh.triangles[tri], closest)
    bary = np.nan_to_num(np.clip(bary, 0.0, None), nan=1.0)  # a degenerate face: its centroid
    bary /= bary.sum(1, keepdims=True)
    lo, hi = FALLOFF_MM
    x = np.clip((dist - lo) / (hi - lo), 0.0, 1.0)
    weight = 1.0 - x * x * (3.0 - 2.0 * x)  # smoothstep falloff
    _, back, _ = trimesh.proximity.closest_point(target, registered)
    info.update(registration_mean_mm=float(back.mean()), registration_p95_mm=float(np.percentile(back, 95)),
                moving_fraction=float((weight > 0).mean()))
    log(f"registration: template to surface {back.mean():.2f} mm mean, {np.percentile(back, 95):.2f} mm p95; "
        f"{(weight > 0).mean():.0%} of the mesh's vertices move")
    return FaceFit(user, scale, unit, r, t, registered.astype(np.float32), tri.astype(np.int64),
                   bary.astype(np.float64), weight, dist, info)
