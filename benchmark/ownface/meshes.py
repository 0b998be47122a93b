"""Reading a user's own face mesh (OBJ, PLY, GLB) in file order, its units and sanity checks.

Vertices come back exactly as the file lists them (OBJ ``v`` lines, PLY vertex element, glTF
accessor order), so results can be written back on the same vertices. OBJ texture coordinates
are kept separately (``TexCoords``: one UV per face corner through its own index list), because
at a UV seam one ``v`` carries several ``vt``; trimesh's loader splits such vertices, so the OBJ
is read twice through it (with and without ``vt``) and the split vertices are mapped back to the
file's through the face corners.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.export import TexCoords

from fc4dfs.datasets.realdata import FACE_EXTENT_MM, UNITS, face_extent, units_for_extent

MESH_SUFFIXES = (".obj", ".ply", ".glb")


@dataclass(frozen=True, eq=False)
class UserMesh:
    """A user's mesh as stored: ``vertices [V, 3]`` float64 in the file's units, ``faces [F, 3]``,
    optional ``texcoords`` (OBJ ``vt`` / glTF ``TEXCOORD_0``) and the file it came from."""

    vertices: np.ndarray
    faces: np.ndarray
    texcoords: TexCoords | None
    path: Path

    @property
    def extent(self) -> float:
        """Bounding-box diagonal in file units (the size the dataset readers' face-size check judges)."""
        return face_extent(self.vertices)


def read_user_mesh(path: Path) -> UserMesh:
    """Read ``path`` (.obj, .ply or .glb) keeping the file's vertex order and UVs; checks it.

    Raises ``FileNotFoundError`` for a missing file and :class:`UserError` (naming the file) for an
    unreadable, empty, non-triangle-indexable or non-manifold mesh (see :func:`check_mesh`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".obj":
            mesh = _read_obj(path)
        elif suffix == ".ply":
            from fc4dfs.datasets.ply import read_header, read_ply

            counts = {el.name: el.count for el in read_header(path).elements}
            if not counts.get("vertex") or not counts.get("face"):
                raise UserError(f"mesh {path} is empty ({counts.get('vertex', 0)} vertices, "
                                f"{counts.get('face', 0)} faces)")
            ply = read_ply(path)
            mesh = UserMesh(ply.vertices.astype(np.float64), ply.faces, None, path)
        elif suffix == ".glb":
            mesh = _read_glb(path)
        else:
            raise UserError(f"mesh {path}: unsupported file type {suffix!r} (use {', '.join(MESH_SUFFIXES)})")
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any parser failure is a bad file
        raise UserError(f"cannot read mesh {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    check_mesh(mesh)
    return mesh


def _trimesh_obj(text: str, maintain_order: bool, path: Path) -> dict:
    import io

    from trimesh.exchange.obj import load_obj

    loaded = load_obj(io.StringIO(text), maintain_order=maintain_order, group_material=False, split_object=False,
                      split_groups=False)
    geoms = list(loaded["geometry"].values())
    if not geoms:
        raise UserError(f"mesh {path} is empty (no faces)")
    if len(geoms) != 1:
        raise UserError(f"mesh {path} holds {len(geoms)} meshes; give one mesh")
    geom = dict(geoms[0])
    faces = np.asarray(geom.get("faces", np.zeros((0, 3))), dtype=np.int64)
    if faces.ndim == 2 and faces.shape[1] == 4:  # quads: two triangles each, same split in both reads
        from trimesh.geometry import triangulate_quads

        faces = triangulate_quads(faces)
    geom["faces"] = faces.reshape(-1, 3)
    return geom


def _read_obj(path: Path) -> UserMesh:
    text = path.read_text(encoding="utf-8", errors="replace")
    # without vt/vn indices trimesh keeps every ``v`` in file order (maintain_order)
    plain = _trimesh_obj(re.sub(r"(?m)^(f\s.*)$", lambda m: re.sub(r"/\S*", "", m.group(1)), text),
                         maintain_order=True, path=path)
    verts = np.asarray(plain["vertices"], dtype=np.float64)
    faces = plain["faces"]
    if not re.search(r"(?m)^vt\s", text) or not re.search(r"(?m)^f\s+\S*/\d", text):
        return UserMesh(verts, faces, None, path)
    # vertices split at UV seams, faces in the same order
    split = _trimesh_obj(text, maintain_order=False, path=path)
    sfaces = split["faces"]
    uv = getattr(split.get("visual"), "uv", None)
    if uv is None:  # vt lines that no face uses
        return UserMesh(verts, faces, None, path)
    if sfaces.shape != faces.shape or len(uv) != len(split["vertices"]) or \
            not np.allclose(np.asarray(split["vertices"])[sfaces], verts[faces]):
        raise UserError(f"mesh {path}: its texture coordinates do not index every face corner consistently")
    return UserMesh(verts, faces, TexCoords(np.asarray(uv, dtype=np.float32), sfaces), path)


def _read_glb(path: Path) -> UserMesh:
    import trimesh

    mesh = trimesh.load(path, process=False, force="mesh")
    uv = getattr(mesh.visual, "uv", None)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    tex = TexCoords(np.asarray(uv, dtype=np.float32), faces) if uv is not None and len(uv) == len(mesh.vertices) \
        else None
    return UserMesh(np.asarray(mesh.vertices, dtype=np.float64), faces, tex, path)


def check_mesh(mesh: UserMesh) -> None:
    """Refuse an empty mesh, NaN/Inf coordinates, out-of-range or degenerate-index faces, and a
    non-manifold edge (shared by more than two faces); each as one :class:`UserError` naming the file."""
    p = mesh.path
    if len(mesh.vertices) < 3 or len(mesh.faces) == 0:
        raise UserError(f"mesh {p} is empty ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
    if not np.isfinite(mesh.vertices).all():
        raise UserError(f"mesh {p} contains NaN or Inf coordinates")
    f = mesh.faces
    if f.min() < 0 or f.max() >= len(mesh.vertices):
        raise UserError(f"mesh {p}: face indices outside [0, {len(mesh.vertices)})")
    if ((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])).any():
        raise UserError(f"mesh {p} has faces that repeat a vertex")
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    if (counts > 2).any():
        raise UserError(f"mesh {p} is non-manifold: {int((counts > 2).sum())} edge(s) shared by more than two "
                        "faces")


def mm_per_unit(mesh: UserMesh, units: str | None) -> tuple[float, str, bool]:
    """(millimetres per file unit, unit name, whether it was detected) for ``mesh``.

    The same face-size rule as the real-data readers (:func:`fc4dfs.datasets.realdata.units_for_extent`):
    without ``units`` the unit is the one of mm / cm / m under which the bounding-box diagonal lies in
    ``FACE_EXTENT_MM`` (nearest the typical size when two do); a size that fits none, or a given unit
    that puts it outside, is a :class:`UserError` naming the file.
    """
    size = mesh.extent
    lo, hi = FACE_EXTENT_MM
    if units is not None:
        if units not in UNITS:
            raise UserError(f"--units: unknown unit {units!r}; choose from {', '.join(UNITS)}")
        mm = size * UNITS[units]
        if not lo <= mm <= hi:
            raise UserError(f"mesh {mesh.path} spans {mm:.4g} mm in {units}: not the size of a face "
                            f"({lo:g}-{hi:g} mm); check --units")
        return UNITS[units], units, False
    unit = units_for_extent(size)
    if unit is None:
        raise UserError(f"mesh {mesh.path} spans {size:.4g} units: not the size of a face in mm, cm or m "
                        f"({lo:g}-{hi:g} mm); give --units if it is one")
    return UNITS[unit], unit, True
