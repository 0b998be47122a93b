"""Reading a user's mesh in file order (OBJ with UV seams, PLY, GLB), its checks and its units."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.export import TexCoords, write_morph_glb, write_obj, write_ply
from fc4dfs.benchmark.ownface.meshes import mm_per_unit, read_user_mesh

SEAM_OBJ = """# two quads sharing the edge 2-3; the right quad's texture is cut along it
v 0 0 0
v 90 0 0
v 90 120 0
v 0 120 0
v 180 0 10
v 180 120 10
vt 0 0
vt 0.5 0
vt 0.5 1
vt 0 1
vt 0.6 0
vt 0.6 1
vt 1 0
vt 1 1
f 1/1 2/2 3/3 4/4
f 2/5 5/7 6/8 3/6
"""


def test_obj_with_uv_seams_keeps_file_order_and_every_uv(tmp_path):
    path = tmp_path / "seam.obj"
    path.write_text(SEAM_OBJ)
    mesh = read_user_mesh(path)
    assert mesh.vertices.shape == (6, 3)  # trimesh alone would give 8 (vertices 2 and 3 split at the seam)
    np.testing.assert_array_equal(mesh.vertices[4], [180, 0, 10])
    assert mesh.faces.shape == (4, 3)
    tex = mesh.texcoords
    assert tex is not None and tex.faces.shape == mesh.faces.shape
    # vertex 2 (index 1) carries uv (0.5, 0) in the left quad and (0.6, 0) in the right one
    corners = zip(*np.nonzero(mesh.faces == 1))
    uv_of_v1 = {tuple(np.round(tex.uv[tex.faces[f, k]].astype(float), 3).tolist()) for f, k in corners}
    assert uv_of_v1 == {(0.5, 0.0), (0.6, 0.0)}


def test_obj_roundtrip_through_writer_keeps_vertices_and_uvs(tmp_path):
    path = tmp_path / "seam.obj"
    path.write_text(SEAM_OBJ)
    mesh = read_user_mesh(path)
    out = write_obj(tmp_path / "again.obj", mesh.vertices, mesh.faces, texcoords=mesh.texcoords, units="mm")
    again = read_user_mesh(out)
    np.testing.assert_allclose(again.vertices, mesh.vertices)
    np.testing.assert_array_equal(again.faces, mesh.faces)
    np.testing.assert_allclose(again.texcoords.uv[again.texcoords.faces], mesh.texcoords.uv[mesh.texcoords.faces],
                               atol=1e-6)


def test_glb_with_uv_seams_reads_back(tmp_path):
    path = tmp_path / "seam.obj"
    path.write_text(SEAM_OBJ)
    mesh = read_user_mesh(path)
    glb = write_morph_glb(tmp_path / "m.glb", mesh.vertices, mesh.faces, np.zeros((1, 6, 3)), ["t"],
                          np.zeros((2, 1)), 30.0, texcoords=mesh.texcoords)
    back = read_user_mesh(glb)
    assert len(back.vertices) == 8  # glTF splits the two seam vertices
    corners_uv = back.texcoords.uv[back.texcoords.faces]
    np.testing.assert_allclose(np.sort(corners_uv.reshape(-1, 2), axis=0),
                               np.sort(mesh.texcoords.uv[mesh.texcoords.faces].reshape(-1, 2), axis=0), atol=1e-6)


def _grid(n: int = 6, size: float = 150.0) -> tuple[np.ndarray, np.ndarray]:
    m = trimesh.creation.box(extents=(size, size * 1.2, size * 0.6))
    return np.asarray(m.vertices), np.asarray(m.faces)


@pytest.mark.parametrize("case, needle", [
    ("empty", "is empty"), ("nonmanifold", "non-manifold"), ("nan", "NaN"), ("points", "is empty"),
])
def test_bad_meshes_are_one_line_user_errors(tmp_path, case, needle):
    v, f = _grid()
    path = tmp_path / f"{case}.ply"
    if case == "empty":
        write_ply(path, np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    elif case == "nonmanifold":  # a third face on an existing edge
        v2 = np.concatenate([v, [[0.0, 0.0, 200.0]]])
        write_ply(path, v2, np.concatenate([f, [[f[0, 0], f[0, 1], len(v)]]]))
    elif case == "nan":
        v2 = v.copy()
        v2[3] = np.nan
        path.write_bytes(trimesh.Trimesh(v2, f, process=False).export(file_type="ply"))
    else:
        path.write_bytes(trimesh.PointCloud(v).export(file_type="ply"))
    with pytest.raises(UserError) as e:
        read_user_mesh(path)
    msg = str(e.value)
    assert needle in msg and str(path) in msg and "\n" not in msg


def test_unsupported_and_garbage_files(tmp_path):
    with pytest.raises(UserError, match="unsupported file type"):
        (tmp_path / "a.stl").write_text("solid")
        read_user_mesh(tmp_path / "a.stl")
    (tmp_path / "b.ply").write_text("not a ply")
    with pytest.raises(UserError, match="cannot read mesh"):
        read_user_mesh(tmp_path / "b.ply")
    with pytest.raises(FileNotFoundError):
        read_user_mesh(tmp_path / "missing.obj")


@pytest.mark.parametrize("unit, scale", [("mm", 1.0), ("cm", 0.1), ("m", 0.001)])
def test_units_detected_from_face_size(tmp_path, unit, scale):
    v, f = _grid()
    path = write_ply(tmp_path / "f.ply", v * scale, f)
    mm, name, detected = mm_per_unit(read_user_mesh(path), None)
    assert (name, detected) == (unit, True) and mm == pytest.approx(1.0 / scale)


def test_implausible_sizes_are_refused(tmp_path):
    v, f = _grid()
    tiny = read_user_mesh(write_ply(tmp_path / "tiny.ply", v * 0.01, f))  # 2.5 units: no unit makes it a face
    with pytest.raises(UserError, match="not the size of a face"):
        mm_per_unit(tiny, None)
    metres = read_user_mesh(write_ply(tmp_path / "m.ply", v * 0.001, f))
    with pytest.raises(UserError, match="check --units"):
        mm_per_unit(metres, "mm")  # a 0.18 mm face
    assert mm_per_unit(metres, "m")[:2] == (1000.0, "m")
    with pytest.raises(UserError, match="unknown unit"):
        mm_per_unit(metres, "inch")


def test_texcoords_validate_shapes():
    with pytest.raises(ValueError):
        TexCoords(np.zeros((3, 2)), np.array([[0, 1, 5]]))
