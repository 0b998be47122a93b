"""``fc4dfs-bench generate`` end to end on a fixture plugin (tiny dataset, least-squares models)."""
from __future__ import annotations

import json

import h6_fixture_plugin
import numpy as np
import pygltflib
import pytest
import trimesh

from fc4dfs.benchmark.cli import main
from fc4dfs.plugins.manager import discover, set_registry
from fc4dfs.datasets.fixtures import tiny_dataset
from limits import assert_below

BASE = ["generate", "--gen", "h6_meancurve", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke"]


@pytest.fixture(autouse=True)
def fixture_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FC4DFS_PROGRESS", "0")
    set_registry(discover(extra=[(h6_fixture_plugin, "h6-fixtures")]))
    yield
    set_registry(None)


def test_generate_writes_every_format(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(BASE + ["--identity", "id07", "--label", "expr1", "--length", "12", "--fps", "24", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    info = json.loads((out / "generate.json").read_text())
    assert info["identity"] == "id07" and info["label"] == "expr1" and info["fps"] == 24.0
    ply = sorted((out / "ply").glob("*.ply"))
    obj = sorted((out / "obj").glob("*.obj"))
    assert len(ply) == len(obj) == 12
    with np.load(out / "id07_expr1.npz") as z:
        verts = z["vertices"]
        assert verts.shape == (12, tiny_dataset().topology.num_vertices, 3)
        assert z["landmarks"].shape == (12, 68, 3)
        assert float(z["fps"]) == 24.0
    ds = tiny_dataset()
    np.testing.assert_allclose(verts[0], ds.neutral("id07"), atol=1e-3)  # frame 0 is the neutral
    assert np.abs(verts[-1] - verts[0]).max() > 0.5  # the face moves
    np.testing.assert_allclose(trimesh.load(ply[5], process=False).vertices, verts[5], atol=1e-5)
    g = pygltflib.GLTF2().load(str(out / "id07_expr1.glb"))
    assert len(g.meshes[0].primitives[0].targets) == 11
    assert g.asset.extras["generator"] == "h6_meancurve"
    assert (out / "preview.png").is_file() and (out / "preview.gif").is_file()
    # the second call reuses the cached training
    rc = main(BASE + ["--identity", "id07", "--label", "expr1", "--length", "12", "--out", str(tmp_path / "o2"),
                      "--no-preview", "--formats", "npz"])
    assert rc == 0
    assert "(store)" in capsys.readouterr().out
    assert not (tmp_path / "o2" / "ply").exists()


def test_generate_from_neutral_file(tmp_path, capsys):
    ds = tiny_dataset()
    mesh = trimesh.Trimesh(ds.neutral("id03") + 1.0, ds.topology.faces, process=False)
    src = tmp_path / "face.ply"
    mesh.export(src)
    out = tmp_path / "out"
    rc = main(BASE + ["--from-neutral", str(src), "--label", "expr0", "--length", "8", "--out", str(out),
                      "--no-preview", "--formats", "npz"])
    assert rc == 0, capsys.readouterr().err
    with np.load(out / "face_expr0.npz") as z:
        np.testing.assert_allclose(z["vertices"][0], ds.neutral("id03") + 1.0, atol=1e-3)


def test_generate_refuses_other_vertex_count(tmp_path, capsys):
    bad = tmp_path / "small.npy"
    np.save(bad, np.zeros((100, 3), np.float32))
    rc = main(BASE + ["--from-neutral", str(bad), "--label", "expr0", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "small.npy" in err and "100 vertices" in err


@pytest.mark.parametrize("extra, needle", [
    (["--label", "nope"], "label 'nope' not in dataset"),
    (["--label", "expr0", "--identity", "ghost"], "identity 'ghost' not in dataset"),
    (["--label", "expr0", "--formats", "fbx"], "--formats"),
    (["--label", "expr0", "--length", "1"], "--length"),
    (["--label", "expr0", "--intensity", "0.5"],
     "--intensity: generator 'h6_meancurve' cannot control intensity; components that can: generators "),
    (["--label", "expr0", "--timing", "onset=0.1,apex=0.4,offset=0.8"],
     "--timing: generator 'h6_meancurve' cannot control timing; components that can: generators "),
    (["--label", "expr0", "--kind", "n2e"],
     "--kind n2e: generator 'h6_meancurve' cannot control timing, so it cannot choose the kind of label 'expr0' "
     "(in tiny: n2e, n2e2n); components that can:"),
    (["--label", "expr0", "--kind", "n2e", "--timing", "onset=0.1,apex=0.4,offset=0.8"],
     "--kind needs --label and sets the phases itself: drop --timing"),
    (["--interpolate", "expr0,expr1"],
     "--interpolate: generator 'h6_meancurve' has no latent expression code to interpolate; pipelines that have "
     "one: potamias, potamias-pca (--pipeline NAME)"),
    (["--interpolate", "expr0"], "--interpolate expects two different labels A,B, got 'expr0'"),
])
def test_generate_user_errors(tmp_path, capsys, extra, needle):
    rc = main(BASE + extra + ["--out", str(tmp_path / "o")])
    assert rc == 2 and needle in capsys.readouterr().err


def test_generate_from_run_checkpoints(tmp_path, capsys):
    from fc4dfs.benchmark.commands.generate import trained
    from fc4dfs.plugins.contracts import Budget
    from fc4dfs.plugins.manager import registry

    reg = registry()
    ds = tiny_dataset()
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for kind, name in (("generator", "h6_meancurve"), ("decoder", "h6_ridge")):
        comp = trained(reg, kind, name, ds, Budget("smoke"), 0, progress=False).component
        comp.save(run_dir / "checkpoints" / f"{kind}.safetensors")
    (run_dir / "config.json").write_text(json.dumps(
        {"protocol": "e2e", "dataset": "h6_tiny", "generator": "h6_meancurve", "decoder": "h6_ridge",
         "dataset_options": {}}))
    out = tmp_path / "out"
    rc = main(["generate", "--run", str(run_dir), "--label", "expr2", "--length", "10", "--out", str(out),
               "--no-preview", "--formats", "glb"])
    assert rc == 0, capsys.readouterr().err
    info = json.loads((out / "generate.json").read_text())
    assert info["run"] == str(run_dir) and "from run" in info["checkpoints"]["decoder"]
    rc = main(["generate", "--run", str(run_dir), "--dec", "pca", "--label", "expr2", "--out", str(out)])
    assert rc == 2 and "differs from the run's" in capsys.readouterr().err


def test_generate_component_and_dataset_options(tmp_path, capsys):
    common = BASE + ["--identity", "id05", "--label", "expr1", "--length", "9", "--no-preview", "--formats", "npz"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--dec-opt", "alpha=1e7", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert out.count("(trained now)") == 3  # generator + decoder, then the re-optioned decoder only
    with np.load(tmp_path / "a" / "id05_expr1.npz") as a, np.load(tmp_path / "b" / "id05_expr1.npz") as b:
        move_a = np.abs(a["vertices"][-1] - a["vertices"][0]).max()
        move_b = np.abs(b["vertices"][-1] - b["vertices"][0]).max()
    assert_below(move_b, 0.5 * move_a, "motion of the heavily regularised decoder (limit 0.5 x the default's)", " mm")
    assert main(BASE + ["--identity", "id07", "--label", "expr1", "--dataset-opt", "n_identities=6",
                        "--no-preview", "--formats", "npz", "--out", str(tmp_path / "c")]) == 2
    assert "identity 'id07' not in dataset" in capsys.readouterr().err


def _partial_sequence(tmp_path, length: int = 10, known: tuple[int, ...] = (0, 1, 2, 9)):
    """A tiny-dataset landmark sequence with NaN in the frames to fill, saved as .npy."""
    ds = tiny_dataset()
    seq = ds.sequences[0].resampled(length).landmarks.astype(np.float32)
    partial = np.full_like(seq, np.nan)
    partial[list(known)] = seq[list(known)]
    path = tmp_path / "partial.npy"
    np.save(path, partial)
    return path, seq, ds.sequences[0]


def test_generate_fills_a_partial_sequence(tmp_path, capsys):
    """Expression filling from the CLI: known frames come back exactly, the others are filled."""
    path, seq, src = _partial_sequence(tmp_path)
    out = tmp_path / "out"
    rc = main(["generate", "--gen", "ddpm", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
               "--gen-opt", "sampling_steps=5", "--gen-opt", "harmonize_iters=1", "--identity", src.identity,
               "--label", src.label, "--known", str(path), "--no-preview", "--formats", "npz", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    info = json.loads((out / "generate.json").read_text())
    assert info["known"]["frames"] == [0, 1, 2, 9] and info["length"] == 10
    with np.load(out / f"{src.identity}_{src.label}.npz") as z:
        lm = z["landmarks"]
    np.testing.assert_array_equal(lm[[0, 1, 2, 9]], seq[[0, 1, 2, 9]])
    assert np.isfinite(lm).all() and np.abs(lm[5] - lm[0]).max() > 0
    # --known-frames picks the known frames of a complete sequence
    full = tmp_path / "full.npz"
    np.savez(full, landmarks=seq)
    rc = main(["generate", "--gen", "ddpm", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
               "--gen-opt", "sampling_steps=5", "--gen-opt", "harmonize_iters=1", "--identity", src.identity,
               "--label", src.label, "--known", str(full), "--known-frames", "0-3,-1", "--no-preview",
               "--formats", "npz", "--out", str(tmp_path / "o2")])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "o2" / "generate.json").read_text())["known"]["frames"] == [0, 1, 2, 3, 9]


@pytest.mark.parametrize("make, extra, needle", [
    (lambda p: np.save(p / "k.npy", np.zeros((10, 5, 3))), [], "[T >= 2, 68, 3]"),
    (lambda p: np.save(p / "k.npy", np.zeros((10, 68, 3))), [], "every frame is known"),
    (lambda p: np.save(p / "k.npy", np.zeros((10, 68, 3))), ["--known-frames", "0,12"], "frame 12 is outside"),
    (lambda p: np.save(p / "k.npy", np.zeros((10, 68, 3))), ["--known-frames", "0", "--length", "8"],
     "--length 8 differs"),
    (lambda p: np.save(p / "k.npy", np.full((10, 68, 3), np.nan)), ["--known-frames", "0"], "hold NaN"),
    (lambda p: None, [], "not found"),
])
def test_generate_known_sequence_errors_name_the_file(tmp_path, capsys, make, extra, needle):
    make(tmp_path)
    rc = main(["generate", "--gen", "ddpm", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
               "--label", "expr0", "--known", str(tmp_path / "k.npy"), "--out", str(tmp_path / "o")] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and ("k.npy" in err or "--known-frames" in err or "--length" in err), err


def test_generate_known_needs_a_generator_that_can_fill(tmp_path, capsys):
    path, _, src = _partial_sequence(tmp_path)
    rc = main(BASE + ["--label", src.label, "--known", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot fill a partial sequence" in err and "ddpm" in err


def test_generate_pipeline_writes_an_intensity_strip(tmp_path, capsys):
    out = tmp_path / "strip"
    rc = main(["generate", "--pipeline", "potamias-pca", "--dataset", "h6_tiny", "--budget", "smoke", "--label",
               "expr1", "--length", "10", "--intensity", "0.25,1.5", "--timing", "onset=0.1,apex=0.5,offset=0.8",
               "--formats", "npz", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    low, high = (np.load(out / f"intensity-{x}" / next((out / f"intensity-{x}").glob("*.npz")).name)["vertices"]
                 for x in ("0.25", "1.5"))
    assert (out / "intensities.png").stat().st_size > 1000
    disp = [np.linalg.norm(v - v[:1], axis=-1).mean() for v in (low, high)]
    assert disp[1] > disp[0], f"mean displacement at intensity 1.5 {disp[1]:.4f} mm <= at 0.25 {disp[0]:.4f} mm"
    rc = main(["generate", "--pipeline", "potamias", "--gen", "h6_meancurve", "--label", "expr1", "--out", str(out)])
    assert rc == 2 and "--pipeline replaces the generator and decoder" in capsys.readouterr().err


def test_generate_ddpm_writes_an_intensity_strip(tmp_path, capsys):
    """--intensity with ddpm (classifier-free guidance, its default): one decoded sequence per level,
    each from the given neutral, and the comparison strip; the paper's classifier guidance refuses."""
    out = tmp_path / "strip"
    ddpm = ["generate", "--gen", "ddpm", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
            "--gen-opt", "sampling_steps=5", "--gen-opt", "harmonize_iters=1", "--gen-opt", "text_guidance=false"]
    rc = main(ddpm + ["--identity", "id07", "--label", "expr1", "--length", "8", "--intensity", "0.25,1.5",
                      "--formats", "npz", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    info = json.loads((out / "generate.json").read_text())
    assert (info["generator"], info["decoder"], info["intensities"]) == ("ddpm", "h6_ridge", [0.25, 1.5])
    assert (out / "intensities.png").stat().st_size > 1000
    for x in ("0.25", "1.5"):
        with np.load(out / f"intensity-{x}" / "id07_expr1.npz") as z:
            assert z["vertices"].shape[0] == 8 and np.isfinite(z["vertices"]).all()
    rc = main(ddpm + ["--gen-opt", "guidance=classifier", "--label", "expr1", "--intensity", "0.5",
                      "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "generator 'ddpm' controls intensity only when trained with other options" in err, err


def test_generate_from_a_text_description(tmp_path, capsys):
    """Text control from the CLI (ddpm): the neutral is frame 0 and the text is recorded."""
    out = tmp_path / "out"
    rc = main(["generate", "--gen", "ddpm", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
               "--gen-opt", "sampling_steps=5", "--gen-opt", "harmonize_iters=1", "--identity", "id07",
               "--text", "from the neutral face to expr1", "--length", "8", "--no-preview", "--formats", "npz",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    info = json.loads((out / "generate.json").read_text())
    assert info["text"] == "from the neutral face to expr1" and info["label"] is None
    with np.load(out / "id07_text.npz") as z:
        lm = z["landmarks"]
    assert lm.shape == (8, 68, 3) and np.isfinite(lm).all()


@pytest.mark.parametrize("extra, needle", [
    ([], "exactly one of --label or --text"),
    (["--label", "expr0", "--text", "a smile"], "exactly one of --label or --text"),
    (["--text", "  "], "--text must be a non-empty"),
])
def test_generate_text_argument_errors(tmp_path, capsys, extra, needle):
    rc = main(BASE + extra + ["--out", str(tmp_path / "o")])
    assert rc == 2 and needle in capsys.readouterr().err


def test_generate_text_needs_a_generator_with_text_control(tmp_path, capsys):
    rc = main(BASE + ["--text", "a big smile", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be conditioned on text" in err and not (tmp_path / "o").exists()


def test_generate_fc_lstm_with_intensity_and_kind(tmp_path, capsys):
    """fc_lstm honours --intensity and --kind when trained with those controls, and says how otherwise."""
    common = ["generate", "--gen", "fc_lstm", "--dec", "h6_ridge", "--dataset", "h6_tiny", "--budget", "smoke",
              "--label", "expr1", "--length", "10", "--formats", "npz"]
    rc = main(common + ["--intensity", "0.5", "--out", str(tmp_path / "no")])
    assert rc == 2 and ("--intensity: generator 'fc_lstm' controls intensity only when trained with --gen-opt "
                        "intensity=true") in capsys.readouterr().err
    out = tmp_path / "strip"
    rc = main(common + ["--gen-opt", "intensity=true", "--gen-opt", "timing=true", "--budget-opt", "epochs=20",
                        "--intensity", "0.25,1.5", "--kind", "n2e2n", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert (out / "intensities.png").stat().st_size > 1000
    summary = json.loads((out / "generate.json").read_text())
    assert summary["kind"] == "n2e2n" and summary["timing"]["rest"] < 1.0, summary["timing"]
    low, high = (np.load(next((out / f"intensity-{x}").glob("*.npz")))["vertices"] for x in ("0.25", "1.5"))
    disp = [np.linalg.norm(v - v[:1], axis=-1).mean() for v in (low, high)]
    assert disp[1] > disp[0], f"mean displacement at intensity 1.5 {disp[1]:.4f} mm <= at 0.25 {disp[0]:.4f} mm"


def test_generate_interpolates_a_pipeline_latent(tmp_path, capsys):
    out = tmp_path / "interp"
    rc = main(["generate", "--pipeline", "potamias-pca", "--dataset", "h6_tiny", "--budget", "smoke",
               "--interpolate", "expr0,expr2", "--steps", "5", "--formats", "npz", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    verts = np.load(next(out.glob("*.npz")))["vertices"]
    assert verts.shape[0] == 6 and (out / "interpolation.png").stat().st_size > 1000
    # the codes move from A's apex to B's: consecutive meshes differ, and the neutral comes first
    steps = np.linalg.norm(np.diff(verts[1:], axis=0), axis=-1).mean(-1)
    assert (steps > 0).all(), steps
    rc = main(["generate", "--pipeline", "potamias-pca", "--dataset", "h6_tiny", "--budget", "smoke",
               "--interpolate", "expr0,nope", "--out", str(tmp_path / "bad")])
    assert rc == 2 and "--interpolate: label 'nope' not in dataset" in capsys.readouterr().err
