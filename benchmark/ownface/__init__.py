"""Bring your own face: animate a mesh of any topology, in its own units and pose.

``generate --from-neutral my_head.obj`` reads the mesh in file order (:mod:`.meshes`), registers
the dataset's template to it (:mod:`.fit`), decodes on the template topology, and carries every
frame's displacements back to the user's vertices; the output keeps the user's faces, UVs, units
and pose. :func:`load_own_face` is the one entry point the commands use.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from fc4dfs.benchmark.ownface.fit import FaceFit, fit_face, read_landmarks
from fc4dfs.benchmark.ownface.meshes import MESH_SUFFIXES, UserMesh, mm_per_unit, read_user_mesh

if TYPE_CHECKING:
    from fc4dfs.datasets.base import Dataset, Topology

__all__ = ["FaceFit", "UserMesh", "dataset_template", "load_own_face", "same_faces", "MESH_SUFFIXES"]


def dataset_template(dataset: "Dataset") -> np.ndarray:
    """The registration template ``[V, 3]`` (mm): the mean neutral of the generator split's training
    identities (the faces the components were trained on)."""
    train, _ = dataset.generator_split()
    return np.mean([dataset.neutral(i) for i in train], axis=0).astype(np.float32)


def same_faces(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two face lists ``[F, 3]`` hold the same triangles (any order, any rotation of corners)."""
    if a.shape != b.shape:
        return False

    def canon(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, np.int64)
        k = np.argmin(f, axis=1)
        rolled = np.stack([f[np.arange(len(f)), (k + j) % 3] for j in range(3)], axis=1)
        return rolled[np.lexsort(rolled.T[::-1])]

    return bool(np.array_equal(canon(a), canon(b)))


def _identity_fit(mesh: UserMesh, topology: "Topology", units: str | None, log: Callable[[str], None]) -> FaceFit:
    """The trivial fit of a mesh that already has the dataset's topology (only its units change)."""
    scale, unit, detected = mm_per_unit(mesh, units)
    if unit != "mm":
        log(f"units: {unit} ({'detected from the face size' if detected else 'from --units'})")
    faces = topology.faces
    face_of = np.zeros(topology.num_vertices, np.int64)
    corner = np.zeros(topology.num_vertices, np.int64)
    for k in range(3):
        face_of[faces[:, k]] = np.arange(len(faces))
        corner[faces[:, k]] = k
    bary = np.zeros((topology.num_vertices, 3))
    bary[np.arange(topology.num_vertices), corner] = 1.0
    n = topology.num_vertices
    return FaceFit(mesh, scale, unit, np.eye(3), np.zeros(3), (mesh.vertices * scale).astype(np.float32),
                   face_of, bary, np.ones(n), np.zeros(n), {"units": unit, "units_detected": detected,
                                                            "alignment": "same topology"})


def load_own_face(path: Path, dataset: "Dataset", landmarks_file: Path | None = None, units: str | None = None,
                  log: Callable[[str], None] = print) -> FaceFit | None:
    """A :class:`FaceFit` of the neutral mesh file ``path`` (.obj/.ply/.glb) to ``dataset``'s template,
    or ``None`` for an array file (.npy/.npz: vertices on the dataset's topology, read as before).

    A mesh whose faces are the dataset's own (same triangles) is used as it is (after units);
    anything else, including the same vertex count with other faces, is registered (:func:`fit_face`).
    Raises :class:`~fc4dfs.benchmark.errors.UserError` naming the file for every bad input.
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        return None
    topo = dataset.topology
    mesh = read_user_mesh(path)
    lms = read_landmarks(landmarks_file, topo.num_landmarks, mesh) if landmarks_file is not None else None
    if len(mesh.vertices) == topo.num_vertices and same_faces(mesh.faces, topo.faces):
        return _identity_fit(mesh, topo, units, log)
    why = "the same vertex count but other faces" if len(mesh.vertices) == topo.num_vertices else \
        f"{len(mesh.vertices)} vertices, {len(mesh.faces)} faces"
    log(f"{path.name}: {why} (dataset topology: {topo.num_vertices} vertices, {topo.num_faces} faces): "
        "registering the template to it")
    return fit_face(mesh, dataset_template(dataset), topo, landmarks=lms, units=units, log=log)


def to_user_output(fit: FaceFit | None, frames: np.ndarray, landmarks: np.ndarray,
                   topology: "Topology") -> dict:
    """Export arguments for frames ``[T, V, 3]`` and landmarks ``[T, L, 3]`` decoded on the template
    topology: on the user's mesh (vertices, faces, UVs, units, pose) when ``fit`` is given, else as they are."""
    if fit is None:
        return {"frames": frames, "landmarks": landmarks, "faces": topology.faces, "texcoords": None,
                "units": "mm", "lmk_face_idx": topology.lmk_face_idx, "lmk_bary": topology.lmk_bary}
    return {"frames": fit.to_user(frames, topology.faces),
            "landmarks": fit.to_user_points(landmarks).astype(np.float32), "faces": fit.user.faces,
            "texcoords": fit.user.texcoords, "units": fit.units, "lmk_face_idx": None, "lmk_bary": None}


def export_blendshapes(out: Path, stem: str, gen, dec, topology: "Topology", neutral: np.ndarray,
                       labels: list[str], frames: np.ndarray, length: int, fps: float, seed: int,
                       fit: FaceFit | None = None, log: Callable[[str], None] = print) -> tuple[list[Path], dict]:
    """Blendshape export of the generated ``frames [T, V, 3]`` (template topology, mm): one apex
    target per label in ``labels`` (each generated on ``neutral`` with the same length, fps, seed),
    non-negative per-frame weights; writes ``{stem}_blendshapes.glb`` / ``.csv`` / ``.json`` on the
    user's mesh when ``fit`` is given. Returns the files and the reconstruction error (mm)."""
    from fc4dfs.benchmark.export import write_morph_glb, write_weight_curves
    from fc4dfs.benchmark.ownface.blendshapes import apex_targets, fit_weights

    nlm = topology.landmarks(neutral[None])
    b_nlm = np.repeat(nlm, len(labels), 0)
    lms = gen.generate(b_nlm, labels, length, fps=fps, seed=seed)
    decoded = dec.decode(np.repeat(neutral[None], len(labels), 0), b_nlm, lms)

    def on_user(fr: np.ndarray) -> np.ndarray:
        return fr if fit is None else fit.to_user(fr, topology.faces)

    shapes = apex_targets({lab: on_user(decoded[k]) for k, lab in enumerate(labels)})
    seq = on_user(frames)
    weights, _, err = fit_weights(seq, shapes)
    scale = fit.mm_per_unit if fit is not None else 1.0
    err_mm = {k: v * scale for k, v in err.items()}
    meta = {"blendshapes": "label apex targets, non-negative least-squares weights",
            "reconstruction_error_mm": err_mm}
    files = [write_morph_glb(out / f"{stem}_blendshapes.glb", seq[0], topology.faces if fit is None else fit.user.faces,
                             shapes.targets, shapes.names, weights, fps, name=f"{stem}_blendshapes", metadata=meta,
                             texcoords=None if fit is None else fit.user.texcoords,
                             units="mm" if fit is None else fit.units)]
    files += write_weight_curves(out / f"{stem}_blendshapes", shapes.names, weights, fps, meta)
    log(f"blendshapes: {len(shapes.names)} targets; reconstruction error {err_mm['mean']:.3f} mm mean, "
        f"{err_mm['max']:.3f} mm max (motion {err_mm['motion_mean']:.3f} mm mean)")
    return files, err_mm
