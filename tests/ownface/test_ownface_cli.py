"""``generate --from-neutral`` on a foreign-topology mesh, ``--blendshapes`` and ``retarget``, end to end
on the test plugin (tiny dataset, least-squares components)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pygltflib
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
import h6_fixture_plugin  # noqa: E402

from fc4dfs.benchmark.cli import main  # noqa: E402
from fc4dfs.benchmark.export import write_obj, write_ply  # noqa: E402
from fc4dfs.benchmark.ownface.evaluate import _seam_uvs  # noqa: E402
from fc4dfs.benchmark.ownface.meshes import read_user_mesh  # noqa: E402
from fc4dfs.benchmark.ownface.remesh import retriangulate  # noqa: E402
from fc4dfs.plugins.manager import discover, set_registry  # noqa: E402
from fc4dfs.plugins.testing import tiny_dataset  # noqa: E402
from limits import assert_above, assert_below

BASE = ["generate", "--gen", "h6_meancurve", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
        "--label", "expr1", "--length", "10", "--fps", "20", "--no-preview"]


@pytest.fixture(autouse=True)
def fixture_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FC4DFS_PROGRESS", "0")
    set_registry(discover(extra=[(h6_fixture_plugin, "h6-fixtures")]))
    yield
    set_registry(None)


@pytest.fixture
def foreign(tmp_path):
    """A held-out identity's neutral re-triangulated, in cm, as an OBJ with UV seams + landmark points."""
    ds = tiny_dataset()
    neutral = ds.neutral("id07")
    rt = retriangulate(neutral, ds.topology.faces, reduction=0.5, seed=3)
    path = write_obj(tmp_path / "head.obj", rt.vertices / 10.0, rt.faces, texcoords=_seam_uvs(rt.vertices, rt.faces),
                     units="cm")
    lm = tmp_path / "lm.txt"
    np.savetxt(lm, ds.topology.landmarks(neutral[None])[0] / 10.0)
    return path, lm, rt


def test_generate_on_foreign_obj_keeps_its_vertices_uvs_and_units(tmp_path, capsys, foreign):
    path, lm, rt = foreign
    user = read_user_mesh(path)
    assert user.texcoords is not None and len(user.texcoords.uv) > len(user.vertices)  # real seams
    out = tmp_path / "out"
    rc = main(BASE + ["--from-neutral", str(path), "--landmarks-file", str(lm), "--out", str(out), "--blendshapes"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "units: cm" in captured.out and "registering the template" in captured.out
    with np.load(out / "head_expr1.npz") as z:
        frames = z["vertices"]
        np.testing.assert_array_equal(z["faces"], user.faces)
        assert json.loads(str(z["metadata"]))["units"] == "cm"
    assert frames.shape == (10, len(user.vertices), 3)
    np.testing.assert_allclose(frames[0], user.vertices, atol=1e-5)  # frame 0 is the user's file
    assert np.abs(frames[-1] - frames[0]).max() > 0.05  # the face moves (cm)
    objs = sorted((out / "obj").glob("*.obj"))
    again = read_user_mesh(objs[-1])
    np.testing.assert_allclose(again.vertices, frames[-1], atol=1e-5)
    np.testing.assert_array_equal(again.texcoords.faces, user.texcoords.faces)
    np.testing.assert_allclose(again.texcoords.uv, user.texcoords.uv, atol=1e-6)
    g = pygltflib.GLTF2().load(str(out / "head_expr1.glb"))
    prim = g.meshes[0].primitives[0]
    assert prim.attributes.TEXCOORD_0 is not None and g.nodes[0].scale == [0.01] * 3
    assert g.accessors[prim.attributes.POSITION].count == len(np.unique(
        np.stack([user.faces.ravel(), user.texcoords.faces.ravel()], 1), axis=0))  # split at seams only
    back = read_user_mesh(out / "head_expr1.glb")  # the input's UVs at every face corner
    np.testing.assert_allclose(np.sort(back.texcoords.uv[back.texcoords.faces].reshape(-1, 2), axis=0),
                               np.sort(user.texcoords.uv[user.texcoords.faces].reshape(-1, 2), axis=0), atol=1e-6)
    # blendshapes: one target per label, weights reproduce the sequence
    b = pygltflib.GLTF2().load(str(out / "head_expr1_blendshapes.glb"))
    assert b.meshes[0].extras["targetNames"] == tiny_dataset().labels
    curves = json.loads((out / "head_expr1_blendshapes.json").read_text())
    err = curves["metadata"]["reconstruction_error_mm"]
    assert_below(err["mean"], 0.1 * err["motion_mean"], f"blendshape reconstruction error (limit 0.1 x motion; {err})",
                 " mm")
    csv = (out / "head_expr1_blendshapes.csv").read_text().splitlines()
    assert csv[0] == "frame,time_s," + ",".join(tiny_dataset().labels) and len(csv) == 11
    assert "blendshapes:" in captured.out and "reconstruction error" in captured.out


def _run_err(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("case, needle", [
    ("metres_as_mm", "check --units"), ("implausible", "not the size of a face"), ("landmark_range", "out of range"),
    ("nonmanifold", "non-manifold"), ("empty", "is empty"), ("landmarks_without_mesh", "need --from-neutral"),
])
def test_bad_own_faces_fail_in_one_line_and_write_nothing(tmp_path, capsys, foreign, case, needle):
    path, lm, rt = foreign
    extra = ["--from-neutral", str(path), "--landmarks-file", str(lm)]
    if case == "metres_as_mm":
        extra += ["--units", "mm"]
    elif case == "implausible":
        extra[1] = str(write_ply(tmp_path / "big.ply", rt.vertices * 50.0, rt.faces))
    elif case == "landmark_range":
        bad = tmp_path / "idx.txt"
        np.savetxt(bad, np.r_[np.arange(67), 10 ** 6], fmt="%d")
        extra[3] = str(bad)
    elif case == "nonmanifold":
        e = np.sort(np.concatenate([rt.faces[:, [0, 1]], rt.faces[:, [1, 2]], rt.faces[:, [2, 0]]]), axis=1)
        uniq, counts = np.unique(e, axis=0, return_counts=True)
        a, b = uniq[np.flatnonzero(counts == 2)[0]]  # an interior edge gets a third face
        third = next(v for v in rt.faces[5] if v not in (a, b))
        f = np.concatenate([rt.faces, [[a, b, third]]])
        extra[1] = str(write_ply(tmp_path / "nm.ply", rt.vertices / 10.0, f))
    elif case == "empty":
        (tmp_path / "empty.obj").write_text("# nothing\n")
        extra[1] = str(tmp_path / "empty.obj")
    else:
        extra = ["--landmarks-file", str(lm)]
    out = tmp_path / "out"
    rc, err = _run_err(BASE + extra + ["--out", str(out)], capsys)
    assert rc == 2 and needle in err and err.count("\n") == 1 and err.startswith("fc4dfs-bench: error:"), err
    assert not out.exists()


def test_retarget_between_faces(tmp_path, capsys, foreign):
    path, lm, rt = foreign
    ds = tiny_dataset()
    src = next(s for s in ds.sequences if s.identity == "id01" and s.label == "expr2")
    seq = tmp_path / "src.npz"
    np.savez(seq, vertices=np.asarray(src.frames), fps=np.asarray(src.fps))
    out = tmp_path / "rt"
    rc = main(["retarget", "--source", str(seq), "--to", str(path), "--landmarks-file", str(lm), "--dec", "h6_ridge",
               "--dataset", "h6_tiny", "--budget", "smoke", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "identity normalisation: scale" in captured.out
    with np.load(out / "head_from_src.npz") as z:
        frames, fps = z["vertices"], float(z["fps"])
    user = read_user_mesh(path)
    assert frames.shape == (src.length, len(user.vertices), 3) and fps == src.fps
    np.testing.assert_allclose(frames[0], user.vertices, atol=1e-5)
    # the source's motion shows on the target: largest where the source moves most (same template place)
    src_motion = np.linalg.norm(np.asarray(src.frames)[-1] - np.asarray(src.frames)[0], axis=-1)
    tgt_motion = np.linalg.norm(frames[-1] - frames[0], axis=-1) * 10.0  # cm -> mm
    at_source_peak = rt.sample(src_motion[None, :, None], ds.topology.faces)[0, :, 0]
    corr = np.corrcoef(at_source_peak, tgt_motion)[0, 1]
    assert_above(corr, 0.5, "correlation of source and target motion maps")


def test_retarget_refuses_bad_source(tmp_path, capsys, foreign):
    path, lm, rt = foreign
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    rc, err = _run_err(["retarget", "--source", str(bad), "--to", str(path), "--dec", "h6_ridge", "--dataset",
                        "h6_tiny", "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "needs 'vertices'" in err and not (tmp_path / "o").exists()
