"""The PLY reader/writer: encodings, property layouts, and every malformed-file error."""
from __future__ import annotations

import numpy as np
import pytest

from fc4dfs.datasets.ply import (PlyError, PlyFrameReader, PlyTopologyError, parse_header, read_header, read_ply,
                                 write_ply)
from fc4dfs.datasets.fixtures import tiny_dataset

FORMATS = ["ascii", "binary_little_endian", "binary_big_endian"]


@pytest.fixture(scope="module")
def mesh():
    ds = tiny_dataset()
    return (np.asarray(ds.sequences[0].frames[-1], np.float64) / 1000.0), ds.topology.faces


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_matches_plyfile(tmp_path, mesh, fmt):
    plyfile = pytest.importorskip("plyfile")
    v, f = mesh
    path = tmp_path / "m.ply"
    write_ply(path, v, f, fmt=fmt, extra_vertex_properties={"confidence": np.arange(len(v))})
    got = read_ply(path)
    ref = plyfile.PlyData.read(str(path))
    ref_v = np.stack([ref["vertex"][c] for c in "xyz"], 1)
    assert got.vertices.dtype == np.float32 and got.vertices.shape == v.shape
    np.testing.assert_allclose(got.vertices, ref_v, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.vertices, v, atol=1e-7)
    assert np.array_equal(got.faces, f)
    assert np.array_equal(np.stack(ref["face"]["vertex_indices"]), f)
    assert got.header.format == fmt


def test_mixed_property_types_and_order(tmp_path, mesh):
    """Double coordinates after a uchar colour, uint face indices with an int count, big-endian."""
    plyfile = pytest.importorskip("plyfile")
    v, f = mesh
    vert = np.empty(len(v), [("red", "u1"), ("x", ">f8"), ("y", ">f8"), ("z", ">f8"), ("s", ">i2")])
    vert["red"], vert["x"], vert["y"], vert["z"], vert["s"] = 7, v[:, 0], v[:, 1], v[:, 2], -3
    face = np.empty(len(f), [("vertex_indices", "O"), ("flag", "u1")])
    face["vertex_indices"] = list(f.astype(np.uint32))
    face["flag"] = 1
    el_v = plyfile.PlyElement.describe(vert, "vertex")
    el_f = plyfile.PlyElement.describe(face, "face", len_types={"vertex_indices": "i4"},
                                       val_types={"vertex_indices": "u4"})
    path = tmp_path / "mixed.ply"
    plyfile.PlyData([el_v, el_f], byte_order=">").write(str(path))
    got = read_ply(path)
    np.testing.assert_allclose(got.vertices, v.astype(np.float32))
    assert np.array_equal(got.faces, f)


def test_polygon_faces_are_refused(tmp_path):
    v = np.zeros((4, 3))
    for fmt in ("ascii", "binary_little_endian"):
        path = tmp_path / f"quad_{fmt}.ply"
        write_ply(path, v, np.array([[0, 1, 2]]), fmt=fmt)
        # turn the triangle into a quad by hand
        data = path.read_bytes()
        if fmt == "ascii":
            data = data.replace(b"3 0 1 2", b"4 0 1 2 3")
        else:
            data = data[:-13] + bytes([4]) + np.array([0, 1, 2, 3], "<i4").tobytes()
        path.write_bytes(data)
        with pytest.raises(PlyError, match="4 vertices; only triangle"):
            read_ply(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_name_the_file(tmp_path, mesh, fmt):
    v, f = mesh
    path, good = tmp_path / "t.ply", tmp_path / "good.ply"
    write_ply(path, v, f, fmt=fmt)
    write_ply(good, v, f, fmt=fmt)
    data = path.read_bytes()
    reader = PlyFrameReader.from_file(good)
    reader.read(good)  # primes the reader's same-header fast path
    for cut in (len(data) - 7, len(data) // 2, 40):
        path.write_bytes(data[:cut])
        with pytest.raises(PlyError, match=str(path)):
            read_ply(path)
        with pytest.raises(PlyError, match=str(path)):
            reader.read(path)


def test_not_ply_and_malformed_headers(tmp_path):
    cases = {
        "off.ply": (b"OFF\n3 1 0\n", "not a PLY file"),
        "empty.ply": (b"", "not a PLY file"),
        "nofmt.ply": (b"ply\nelement vertex 1\nproperty float x\nend_header\n", "no 'format'"),
        "badtype.ply": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty quaternion x\nend_header\n", "malformed"),
        "badfmt.ply": (b"ply\nformat binary_middle_endian 1.0\nend_header\n", "unknown PLY format"),
        "noend.ply": (b"ply\nformat ascii 1.0\nelement vertex 1\n", "truncated PLY header"),
        "text.ply": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                     b"property float z\nend_header\n1 2 banana\n", "non-numeric"),
    }
    for name, (data, msg) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(PlyError, match=msg) as e:
            read_ply(path)
        assert name in str(e.value)
    with pytest.raises(PlyError, match="directory"):
        read_ply(tmp_path)


def test_header_fields(tmp_path, mesh):
    v, f = mesh
    path = tmp_path / "h.ply"
    write_ply(path, v, f, comments=["made by a test"])
    h = read_header(path)
    assert [e.name for e in h.elements] == ["vertex", "face"]
    assert h.element("vertex").count == len(v) and h.element("face").count == len(f)
    assert h.comments == ("made by a test",)
    assert parse_header(path.read_bytes()).size == h.size


def test_frame_reader_checks_topology(tmp_path, mesh):
    v, f = mesh
    ref = tmp_path / "ref.ply"
    write_ply(ref, v, f, fmt="binary_little_endian")
    reader = PlyFrameReader.from_file(ref)
    # another encoding of the same faces is accepted (and its vertices read)
    for fmt in FORMATS:
        other = tmp_path / f"same_{fmt}.ply"
        write_ply(other, v * 2, f, fmt=fmt, index_dtype="u4")
        np.testing.assert_allclose(reader.read(other), (v * 2).astype(np.float32), atol=1e-6)  # ascii: 6 digits
    fewer = tmp_path / "fewer.ply"
    write_ply(fewer, v[:-1], f[(f < len(v) - 1).all(1)])
    with pytest.raises(PlyTopologyError, match="fewer.ply: has 575 vertices"):
        reader.read(fewer)
    flipped = tmp_path / "flipped.ply"
    f2 = f.copy()
    f2[5] = f2[5, ::-1]
    write_ply(flipped, v, f2)
    with pytest.raises(PlyTopologyError, match="flipped.ply: its face list differs .* face 5"):
        reader.read(flipped)
    # the remembered byte encoding must not let a changed file through on a second read
    write_ply(flipped, v, f2, fmt="ascii")
    with pytest.raises(PlyTopologyError):
        reader.read(flipped)


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_ascii_comments_are_read_other_header_lines_refused_escaped(tmp_path, mesh, fmt):
    vertices, faces = mesh
    write_ply(tmp_path / "plain.ply", vertices, faces, fmt=fmt)
    data = (tmp_path / "plain.ply").read_bytes()
    head, rest = data.split(b"\n", 1)
    # an exporter's comment in UTF-8 and in Latin-1, as every file of a dataset from that tool carries it
    commented = head + "\ncomment Créé par Numérisation © 3D\n".encode() + b"comment \xe9t\xe9\n" + rest
    (tmp_path / "commented.ply").write_bytes(commented)
    got = read_ply(tmp_path / "commented.ply")
    np.testing.assert_array_equal(got.vertices, read_ply(tmp_path / "plain.ply").vertices)
    assert any("©" in c for c in read_header(tmp_path / "commented.ply").comments)
    bad = data.replace(b"element vertex", "élément vertex".encode(), 1)
    (tmp_path / "bad.ply").write_bytes(bad)
    with pytest.raises(PlyError) as e:
        read_ply(tmp_path / "bad.ply")
    message = str(e.value)
    assert "bad.ply: PLY header line 3 is not ASCII text: '\\xe9l\\xe9ment" in message and message.isascii(), message
