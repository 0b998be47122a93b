"""Registering the template to a face of another topology and carrying motion back to it.

A held-out synthetic identity's neutral is re-triangulated (subdivided, decimated, shuffled); its
own ground-truth sequences are pushed through the fit and compared with the same sequences read at
the new vertices' surface positions. Thresholds are fractions of the motion's own size.
"""
from __future__ import annotations

import numpy as np
import pytest

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.ownface import dataset_template, load_own_face
from fc4dfs.benchmark.ownface.evaluate import write_variant
from fc4dfs.benchmark.ownface.fit import read_landmarks
from fc4dfs.benchmark.ownface.meshes import read_user_mesh
from fc4dfs.benchmark.ownface.remesh import retriangulate
from fc4dfs.datasets.synthetic import load_synthetic
from limits import assert_below


@pytest.fixture(scope="module")
def data():
    ds = load_synthetic(resolution="small", identities=8, progress=False)
    ident = ds.generator_split()[1][0]
    neutral = ds.neutral(ident)
    rt = retriangulate(neutral, ds.topology.faces, reduction=0.6, seed=1)
    seqs = [np.asarray(s.frames, np.float64) for s in ds.sequences if s.identity == ident][::3]
    return ds, neutral, rt, seqs


def _transfer_error(fit, rt, topo, seqs, rot, scale):
    errs, motion = [], []
    for fr in seqs:
        out = fit.to_user(fit.registered[None] + (fr - fr[:1]), topo.faces).astype(np.float64) * scale @ rot
        out -= out[:1] - rt.vertices[None]  # back to the canonical pose, frame 0 on the re-triangulation
        ref = rt.sample(fr, topo.faces)
        errs.append(np.linalg.norm(out - ref, axis=-1).ravel())
        motion.append(np.linalg.norm(ref - ref[:1], axis=-1).ravel())
    return float(np.concatenate(errs).mean()), float(np.concatenate(motion).mean())


@pytest.mark.parametrize("how", [("ply", "points", "mm", False), ("obj", "indices", "mm", False),
                                 ("ply", "points", "m", True)], ids=["ply-points", "obj-seams-indices",
                                                                     "metres-rotated"])
def test_foreign_topology_carries_motion(tmp_path, data, how):
    ds, neutral, rt, seqs = data
    topo = ds.topology
    mesh_path, lm_path, rot, scale = write_variant(tmp_path, rt, topo.landmarks(neutral[None])[0].astype(float), how)
    lines: list[str] = []
    fit = load_own_face(mesh_path, ds, lm_path, log=lines.append)
    assert fit.units == how[2] and any("registering the template" in s for s in lines)
    assert len(fit.user.vertices) == len(rt.vertices)
    np.testing.assert_allclose(fit.to_user(fit.registered[None].repeat(2, 0), topo.faces)[0], fit.user.vertices,
                               atol=1e-5 * fit.user.extent)  # no motion in, none out: frame 0 is the file
    err, motion = _transfer_error(fit, rt, topo, seqs, rot, scale)
    limit = 0.1 * motion  # the correspondence may misplace at most a tenth of the motion
    assert_below(err, limit, f"transfer error (limit 0.1 x motion {motion:.3f} mm)", " mm")


def test_automatic_alignment_reports_confidence(tmp_path, data):
    ds, neutral, rt, seqs = data
    mesh_path, _, rot, scale = write_variant(tmp_path, rt, np.zeros((68, 3)), ("ply", "none", "mm", False))
    lines: list[str] = []
    fit = load_own_face(mesh_path, ds, None, log=lines.append)
    assert 0.5 <= fit.info["confidence"] <= 1.0 and any("confidence" in s for s in lines)
    assert np.linalg.det(fit.rotation) == pytest.approx(1.0, abs=1e-6)  # never a mirror image
    err, motion = _transfer_error(fit, rt, ds.topology, seqs, rot, scale)
    limit = 0.25 * motion
    assert_below(err, limit, f"transfer error (limit 0.25 x motion {motion:.3f} mm)", " mm")


def test_vertices_beyond_the_template_stay_still(tmp_path, data):
    """A 'back of the head' patch 80 mm behind the face gets weight 0; the face itself keeps weight 1."""
    ds, neutral, rt, seqs = data
    topo = ds.topology
    back = rt.vertices * np.array([0.5, 0.5, -0.2]) + np.array([0.0, 40.0, -80.0])
    verts = np.concatenate([rt.vertices, back])
    faces = np.concatenate([rt.faces, rt.faces[:, ::-1] + len(rt.vertices)])
    from fc4dfs.benchmark.export import write_ply

    path = write_ply(tmp_path / "head.ply", verts, faces)
    lm = tmp_path / "lm.txt"
    np.savetxt(lm, topo.landmarks(neutral[None])[0])
    fit = load_own_face(path, ds, lm, log=lambda s: None)
    assert (fit.weight[len(rt.vertices):] == 0).all()
    assert fit.weight[:len(rt.vertices)].mean() > 0.99
    moved = fit.to_user(fit.registered[None] + (seqs[0] - seqs[0][:1]), topo.faces)
    np.testing.assert_array_equal(moved[:, len(rt.vertices):], np.broadcast_to(back, moved[:, len(rt.vertices):].shape)
                                  .astype(np.float32))


def test_same_topology_mesh_is_used_as_is(tmp_path, data):
    ds, neutral, rt, seqs = data
    from fc4dfs.benchmark.export import write_ply

    path = write_ply(tmp_path / "same.ply", neutral / 10.0, ds.topology.faces)  # in cm
    fit = load_own_face(path, ds, None, log=lambda s: None)
    assert fit.info["alignment"] == "same topology" and fit.units == "cm"
    np.testing.assert_allclose(fit.registered, neutral, atol=1e-3)
    out = fit.to_user(np.stack([neutral, neutral + 1.0]), ds.topology.faces)
    np.testing.assert_allclose(out[1] - out[0], 0.1, atol=1e-5)


def test_same_vertex_count_other_faces_is_registered_not_trusted(tmp_path, data):
    ds, neutral, rt, seqs = data
    from fc4dfs.benchmark.export import write_ply

    perm = np.random.default_rng(0).permutation(len(neutral))  # same count, vertices shuffled: faces differ
    inv = np.argsort(perm)
    path = write_ply(tmp_path / "shuffled.ply", neutral[perm], inv[ds.topology.faces])
    lm = tmp_path / "lm.txt"
    np.savetxt(lm, ds.topology.landmarks(neutral[None])[0])
    lines: list[str] = []
    fit = load_own_face(path, ds, lm, log=lines.append)
    assert any("same vertex count but other faces" in s for s in lines)
    assert fit.info["alignment"].startswith("landmarks")


def test_landmark_files(tmp_path, data):
    ds, neutral, rt, seqs = data
    from fc4dfs.benchmark.export import write_ply

    mesh = read_user_mesh(write_ply(tmp_path / "f.ply", rt.vertices, rt.faces))
    idx = tmp_path / "idx.txt"
    np.savetxt(idx, np.arange(68), fmt="%d")
    np.testing.assert_allclose(read_landmarks(idx, 68, mesh), mesh.vertices[:68])
    np.save(tmp_path / "pts.npy", mesh.vertices[5:73])
    np.testing.assert_allclose(read_landmarks(tmp_path / "pts.npy", 68, mesh), mesh.vertices[5:73])
    bad = tmp_path / "bad.txt"
    np.savetxt(bad, np.r_[np.arange(67), len(mesh.vertices) + 3], fmt="%d")
    with pytest.raises(UserError, match=f"vertex index {len(mesh.vertices) + 3} out of range"):
        read_landmarks(bad, 68, mesh)
    np.savetxt(bad, np.arange(10), fmt="%d")
    with pytest.raises(UserError, match="expected 68 vertex indices"):
        read_landmarks(bad, 68, mesh)
    far = tmp_path / "far.txt"
    np.savetxt(far, ds.topology.landmarks(neutral[None])[0] + np.array([0, 0, 300.0]))
    with pytest.raises(UserError, match="from the surface"):
        load_own_face(tmp_path / "f.ply", ds, far, log=lambda s: None)


def test_template_is_the_training_mean(data):
    ds = data[0]
    train = ds.generator_split()[0]
    np.testing.assert_allclose(dataset_template(ds), np.mean([ds.neutral(i) for i in train], 0), atol=1e-5)


def test_measure_compares_foreign_and_same_topology_paths(data):
    """The issue's measurement, on one identity and two labels with least-squares components."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
    import h6_fixture_plugin

    from fc4dfs.benchmark.ownface.evaluate import VARIANTS, measure
    from fc4dfs.plugins.contracts import Budget

    ds = data[0]
    train = ds.subset(ds.generator_split()[0])
    gen, dec = h6_fixture_plugin.MeanCurveGenerator(), h6_fixture_plugin.RidgeDecoder()
    gen.fit(train, Budget("smoke"))
    dec.fit(train, Budget("smoke"))
    name = next(iter(VARIANTS))
    rows = measure(ds, gen, dec, labels=["mouth_open", "high_smile"], length=12,
                   identities=ds.generator_split()[1][:1], variants={name: VARIANTS[name]})
    (row,) = rows
    assert row["variant"] == name and row["vertices"] > ds.topology.num_vertices
    limit = 0.1 * row["motion_mm"]
    assert_below(row["error_mm"], limit, f"error (limit 0.1 x motion {row['motion_mm']:.3f} mm)", " mm")
