"""How much the foreign-topology path loses against the same-topology path (issue "bring your own face").

For each held-out identity (generator split) and each variant of its neutral mesh written to disk in
another topology (:func:`~.remesh.retriangulate`: subdivided, decimated, vertex order shuffled), the
variant goes through :func:`~fc4dfs.benchmark.ownface.load_own_face` exactly as ``generate
--from-neutral`` does, the same generator + decoder animate it (same label, length, fps, seed), and
the result on the user's vertices is compared with the same-topology path's result read at the same
surface points (each new vertex's barycentric position on the original faces), in mm, per vertex and
frame. ``transfer`` isolates the correspondence: the dataset's own ground-truth sequence pushed
through the fit, against the same sequence read at the new vertices.

Run with trained components: ``benchmarks/test_bench_ownface.py`` (prints the table).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fc4dfs.benchmark.export import TexCoords, write_obj, write_ply
from fc4dfs.benchmark.ownface import load_own_face
from fc4dfs.benchmark.ownface.remesh import Retriangulated, retriangulate

#: variant name -> (file type, landmarks given as, unit, rigid pose change)
VARIANTS: dict[str, tuple[str, str, str, bool]] = {
    "remesh PLY, 68 landmark points": ("ply", "points", "mm", False),
    "remesh OBJ with UV seams, 68 vertex indices": ("obj", "indices", "mm", False),
    "remesh PLY in metres, rotated 25 deg + moved": ("ply", "points", "m", True),
    "remesh PLY, automatic alignment (no landmarks)": ("ply", "none", "mm", False),
}


def _seam_uvs(vertices: np.ndarray, faces: np.ndarray) -> TexCoords:
    """A planar UV layout with a seam along the midline (x = 0): the corners left of it in faces
    that straddle it get a second UV (shifted by one in u, as a wrapped texture would), so one OBJ
    ``v`` carries two ``vt``."""
    x, y = vertices[:, 0], vertices[:, 1]
    uv = np.stack([(x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y)], 1)
    tex_faces = faces.copy()
    straddle = np.flatnonzero((x[faces] < 0).any(1) & (x[faces] >= 0).any(1))
    left = sorted({int(faces[fi, k]) for fi in straddle for k in range(3) if x[faces[fi, k]] < 0})
    second = {v: len(uv) + i for i, v in enumerate(left)}
    for fi in straddle:
        for k in range(3):
            if x[faces[fi, k]] < 0:
                tex_faces[fi, k] = second[int(faces[fi, k])]
    uv = np.concatenate([uv, uv[left] + np.array([1.0, 0.0])])
    return TexCoords(uv.astype(np.float32), tex_faces)


def write_variant(folder: Path, rt: Retriangulated, landmarks: np.ndarray,
                  how: tuple[str, str, str, bool]) -> tuple[Path, Path | None, np.ndarray, float]:
    """Write one variant: (mesh file, landmarks file or None, rotation applied, mm per unit)."""
    ftype, lm_kind, unit, move = how
    scale = {"mm": 1.0, "cm": 10.0, "m": 1000.0}[unit]
    rot = np.eye(3)
    shift = np.zeros(3)
    if move:
        from scipy.spatial.transform import Rotation

        rot = Rotation.from_rotvec(np.deg2rad(25.0) * np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])) \
            .as_matrix()
        shift = np.array([40.0, -15.0, 120.0])
    verts = (rt.vertices @ rot.T + shift) / scale
    lms = (landmarks @ rot.T + shift) / scale
    folder.mkdir(parents=True, exist_ok=True)
    mesh_path = folder / f"neutral.{ftype}"
    if ftype == "obj":
        write_obj(mesh_path, verts, rt.faces, texcoords=_seam_uvs(rt.vertices, rt.faces), units=unit)
    else:
        write_ply(mesh_path, verts, rt.faces, units=unit)
    lm_path = None
    if lm_kind == "points":
        lm_path = folder / "landmarks.txt"
        np.savetxt(lm_path, lms, fmt="%.9g")
    elif lm_kind == "indices":
        from scipy.spatial import cKDTree

        lm_path = folder / "landmarks.txt"
        np.savetxt(lm_path, cKDTree(verts).query(lms)[1], fmt="%d")
    return mesh_path, lm_path, rot, scale


def measure(dataset: Any, gen: Any, dec: Any, labels: list[str] | None = None, length: int = 30,
            fps: float = 30.0, seed: int = 0, identities: list[str] | None = None,
            variants: dict[str, tuple[str, str, str, bool]] = VARIANTS, reduction: float = 0.6,
            log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """Rows ``{identity, variant, vertices, error_mm, p95_mm, transfer_mm, motion_mm, ...}`` (see module doc).

    ``error_mm``: mean per-vertex distance (mm, face region = vertices that move, all frames) between
    the foreign-topology result and the same-topology result read at the same surface points.
    """
    topo = dataset.topology
    labels = labels or list(dataset.labels)
    identities = identities or dataset.generator_split()[1]
    rows = []
    for ident in identities:
        neutral = dataset.neutral(ident)
        nlm = topo.landmarks(neutral[None])
        b_nlm = np.repeat(nlm, len(labels), 0)
        lms = gen.generate(b_nlm, labels, length, fps=fps, seed=seed)
        same = dec.decode(np.repeat(neutral[None], len(labels), 0), b_nlm, lms)  # [B, T, V, 3]
        truth = [np.asarray(s.frames, np.float64) for s in dataset.sequences if s.identity == ident]
        rt = retriangulate(neutral, topo.faces, reduction=reduction, seed=seed)
        for vname, how in variants.items():
            with tempfile.TemporaryDirectory() as tmp:
                mesh_path, lm_path, rot, scale = write_variant(Path(tmp), rt, nlm[0].astype(np.float64), how)
                try:
                    fit = load_own_face(mesh_path, dataset, lm_path, log=log)
                except Exception as e:  # noqa: BLE001 - a failed variant is a row, not a crash
                    rows.append({"identity": ident, "variant": vname, "error": str(e)})
                    continue
            reg = fit.registered[None]
            rlm = topo.landmarks(reg)
            glm = gen.generate(np.repeat(rlm, len(labels), 0), labels, length, fps=fps, seed=seed)
            foreign = dec.decode(np.repeat(reg, len(labels), 0), np.repeat(rlm, len(labels), 0), glm)
            moving = fit.weight > 0
            offset = fit.user.vertices * scale @ rot - rt.vertices  # the variant's move, undone below

            def canonical(frames: np.ndarray) -> np.ndarray:  # user units and pose -> the re-triangulation's mm
                return frames.astype(np.float64) * scale @ rot - offset

            errs, tr_errs, motion = [], [], []
            for b in range(len(labels)):
                ref = rt.sample(same[b].astype(np.float64), topo.faces)
                errs.append(np.linalg.norm(canonical(fit.to_user(foreign[b], topo.faces)) - ref, axis=-1)[:, moving])
                motion.append(np.linalg.norm(ref - ref[:1], axis=-1)[:, moving])
            for fr in truth:
                moved = canonical(fit.to_user(fit.registered[None] + (fr - fr[:1]), topo.faces))
                tr_errs.append(np.linalg.norm(moved - rt.sample(fr, topo.faces), axis=-1)[:, moving].ravel())
            e = np.concatenate([x.ravel() for x in errs])
            tr = np.concatenate(tr_errs)
            rows.append({"identity": ident, "variant": vname, "vertices": len(rt.vertices),
                         "error_mm": float(e.mean()), "p95_mm": float(np.percentile(e, 95)),
                         "max_mm": float(e.max()), "transfer_mm": float(tr.mean()),
                         "motion_mm": float(np.concatenate([m.ravel() for m in motion]).mean()),
                         "alignment": fit.info.get("alignment"), "units": fit.units,
                         "confidence": fit.info.get("confidence")})
            log(f"{ident} / {vname}: {rows[-1]['error_mm']:.3f} mm")
    return rows
