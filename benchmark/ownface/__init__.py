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
