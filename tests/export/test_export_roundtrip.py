"""Exported files re-read by independent libraries (plyfile, trimesh, numpy, pygltflib)."""
from __future__ import annotations

import json
import struct

import numpy as np
import pygltflib
import pytest
import trimesh
from plyfile import PlyData

from fc4dfs.benchmark.export import (export_sequence, morph_basis, write_frames, write_glb, write_npz, write_obj,
                                     write_ply)
from fc4dfs.datasets.fixtures import tiny_dataset

_NP = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}
_NC = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


@pytest.fixture(scope="module")
def seq():
    ds = tiny_dataset()
    s = next(s for s in ds.sequences if s.kind == "n2e2n")
    return s, ds.topology


def read_accessor(g: pygltflib.GLTF2, idx: int) -> np.ndarray:
    """Decode an accessor with pygltflib's parsed JSON + binary blob (no code from the writer)."""
    acc = g.accessors[idx]
    view = g.bufferViews[acc.bufferView]
    blob = g.binary_blob()
    n = _NC[acc.type]
    dtype = np.dtype(_NP[acc.componentType]).newbyteorder("<")
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    arr = np.frombuffer(blob, dtype=dtype, count=acc.count * n, offset=start)
    return arr.reshape(acc.count, n) if n > 1 else arr


def test_ply_roundtrip_plyfile_and_trimesh(tmp_path, seq):
    s, topo = seq
    v = s.frames[5]
    p = write_ply(tmp_path / "a.ply", v, topo.faces)
    ply = PlyData.read(str(p))
    got = np.stack([ply["vertex"][k] for k in "xyz"], 1)
    np.testing.assert_allclose(got, v, atol=1e-6)
    faces = np.stack(ply["face"]["vertex_indices"])
    np.testing.assert_array_equal(faces, topo.faces)
    m = trimesh.load(p, process=False)
    np.testing.assert_allclose(m.vertices, v, atol=1e-6)
    np.testing.assert_array_equal(m.faces, topo.faces)


def test_obj_roundtrip_trimesh(tmp_path, seq):
    s, topo = seq
    v = s.frames[-1]
    p = write_obj(tmp_path / "a.obj", v, topo.faces, comment="test")
    m = trimesh.load(p, process=False, force="mesh")
    assert m.vertices.shape == v.shape
    np.testing.assert_allclose(m.vertices, v, atol=1e-5)
    np.testing.assert_array_equal(m.faces, topo.faces)


def test_per_frame_files_one_per_frame(tmp_path, seq):
    s, topo = seq
    files = write_frames(tmp_path / "ply", s.frames, topo.faces, "ply")
    assert len(files) == s.length and files[0].name == "frame_0000.ply"
    last = PlyData.read(str(files[-1]))
    np.testing.assert_allclose(np.stack([last["vertex"][k] for k in "xyz"], 1), s.frames[-1], atol=1e-6)
    with pytest.raises(ValueError, match="'ply' or 'obj'"):
        write_frames(tmp_path / "x", s.frames, topo.faces, "stl")


def test_npz_roundtrip_numpy(tmp_path, seq):
    s, topo = seq
    p = write_npz(tmp_path / "s.npz", s.frames, topo.faces, s.fps, s.landmarks, {"label": s.label},
                  topo.lmk_face_idx, topo.lmk_bary)
    with np.load(p, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["vertices"], s.frames)
        np.testing.assert_array_equal(z["faces"], topo.faces)
        np.testing.assert_allclose(z["landmarks"], s.landmarks, atol=1e-6)
        assert float(z["fps"]) == s.fps
        assert json.loads(str(z["metadata"])) == {"label": s.label}
        np.testing.assert_array_equal(z["lmk_face_idx"], topo.lmk_face_idx)
    with pytest.raises(ValueError, match="landmarks must be"):
        write_npz(tmp_path / "bad.npz", s.frames, topo.faces, s.fps, s.landmarks[:-1])


def test_glb_morph_per_frame_roundtrip(tmp_path, seq):
    s, topo = seq
    p = write_glb(tmp_path / "s.glb", s.frames, topo.faces, s.fps, metadata={"label": s.label})
    assert p.read_bytes()[:4] == b"glTF" and struct.unpack("<I", p.read_bytes()[8:12])[0] == p.stat().st_size
    g = pygltflib.GLTF2().load(str(p))
    prim = g.meshes[0].primitives[0]
    base = read_accessor(g, prim.attributes.POSITION)
    np.testing.assert_allclose(base, s.frames[0], atol=1e-5)
    np.testing.assert_array_equal(read_accessor(g, prim.indices).reshape(-1, 3), topo.faces)
    assert len(prim.targets) == s.length - 1
    targets = np.stack([read_accessor(g, t["POSITION"]) for t in prim.targets])
    anim = g.animations[0]
    sampler = anim.samplers[0]
    assert sampler.interpolation == "LINEAR"
    assert anim.channels[0].target.path == "weights" and anim.channels[0].target.node == 0
    times = read_accessor(g, sampler.input)
    weights = read_accessor(g, sampler.output).reshape(len(times), -1)
    assert len(times) == s.length
    assert times[-1] == pytest.approx((s.length - 1) / s.fps, rel=1e-6)  # duration
    np.testing.assert_allclose(np.diff(times), 1.0 / s.fps, rtol=1e-5)  # frame rate
    recon = base[None] + np.einsum("tk,kvc->tvc", weights, targets)
    np.testing.assert_allclose(recon, s.frames, atol=1e-4)
    # halfway between two keyframes the player shows the average of the two frames
    mid = base + 0.5 * np.einsum("k,kvc->vc", weights[3] + weights[4], targets)
    np.testing.assert_allclose(mid, 0.5 * (s.frames[3] + s.frames[4]), atol=1e-4)
    assert g.nodes[0].scale == [0.001] * 3
    assert g.asset.extras["fps"] == s.fps and g.asset.extras["label"] == s.label
    assert len(g.meshes[0].extras["targetNames"]) == s.length - 1


def test_glb_basis_is_exact_for_low_rank_motion(tmp_path, seq):
    s, topo = seq
    rng = np.random.default_rng(0)
    modes = rng.normal(size=(3, topo.num_vertices, 3)).astype(np.float32)
    coeff = rng.normal(size=(20, 3)).astype(np.float32)
    coeff[0] = 0
    frames = s.frames[0][None] + np.einsum("tk,kvc->tvc", coeff, modes)
    p = write_glb(tmp_path / "b.glb", frames, topo.faces, 25.0, morph="basis", n_basis=3)
    g = pygltflib.GLTF2().load(str(p))
    prim = g.meshes[0].primitives[0]
    assert len(prim.targets) == 3
    base = read_accessor(g, prim.attributes.POSITION)
    targets = np.stack([read_accessor(g, t["POSITION"]) for t in prim.targets])
    sampler = g.animations[0].samplers[0]
    times = read_accessor(g, sampler.input)
    weights = read_accessor(g, sampler.output).reshape(len(times), -1)
    assert times[-1] == pytest.approx(19 / 25.0)
    np.testing.assert_allclose(base[None] + np.einsum("tk,kvc->tvc", weights, targets), frames, atol=1e-3)
    # a basis smaller than the motion's rank loses detail
    basis, w = morph_basis(frames, 2)
    assert np.abs(frames[0] + np.einsum("tk,kvc->tvc", w, basis) - frames).max() > 1e-2


def test_glb_loads_in_trimesh(tmp_path, seq):
    s, topo = seq
    p = write_glb(tmp_path / "s.glb", s.frames, topo.faces, s.fps)
    scene = trimesh.load(p)
    geom = next(iter(scene.geometry.values()))
    assert geom.vertices.shape == (topo.num_vertices, 3)
    np.testing.assert_allclose(np.asarray(geom.vertices), s.frames[0], atol=1e-5)


def test_export_sequence_writes_every_format(tmp_path, seq):
    s, topo = seq
    out = export_sequence(tmp_path, s.frames, topo.faces, s.fps, s.landmarks, {"identity": s.identity})
    assert set(out) == {"ply", "obj", "npz", "glb"}
    assert len(out["ply"]) == len(out["obj"]) == s.length
    assert all(p.is_file() and p.stat().st_size > 0 for files in out.values() for p in files)
    with pytest.raises(ValueError, match="unknown export format"):
        export_sequence(tmp_path, s.frames, topo.faces, s.fps, formats=["fbx"])


def test_export_refuses_bad_input(tmp_path, seq):
    s, topo = seq
    bad = s.frames.copy()
    bad[2, 7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_glb(tmp_path / "x.glb", bad, topo.faces, 30.0)
    with pytest.raises(ValueError, match="fps"):
        write_glb(tmp_path / "x.glb", s.frames, topo.faces, 0.0)
    with pytest.raises(ValueError, match="faces index"):
        write_ply(tmp_path / "x.ply", s.frames[0][:10], topo.faces)
