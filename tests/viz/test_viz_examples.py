"""``render_examples`` / ``fc4dfs-bench render`` on run directories laid out as the runner writes them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fc4dfs.benchmark.cli import main
from fc4dfs.benchmark.viz import compare_runs, load_examples, render_examples
from fc4dfs.datasets.fixtures import tiny_dataset


def make_run(run_dir: Path, method: str, noise: float, with_pred_mesh: bool = True, n: int = 2,
             length: int = 10) -> Path:
    """A run directory with ``examples.npz/json`` like the runner's (pred_mesh optional)."""
    ds = tiny_dataset()
    topo = ds.topology
    rng = np.random.default_rng(int(noise * 100))
    arrays = {"faces": topo.faces, "lmk_face_idx": topo.lmk_face_idx, "lmk_bary": topo.lmk_bary}
    meta = []
    for i, s in enumerate(ds.sequences[-n:]):
        gt = np.asarray(s.frames[:length])
        pred = (gt + noise * rng.normal(size=gt.shape)).astype(np.float32)
        arrays[f"gt_mesh_{i}"], arrays[f"gt_lm_{i}"] = gt, topo.landmarks(gt)
        arrays[f"pred_lm_{i}"] = topo.landmarks(pred)
        if with_pred_mesh:
            arrays[f"pred_mesh_{i}"] = pred
        meta.append({"index": i, "identity": s.identity, "label": s.label, "fps": s.fps, "method": method})
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(run_dir / "examples.npz", **arrays)
    (run_dir / "examples.json").write_text(json.dumps(meta))
    return run_dir


def test_render_examples_writes_strips_and_gifs(tmp_path):
    rd = make_run(tmp_path / "run", "mlp+pca", 1.0)
    files = render_examples(rd, max_examples=2, time_budget_s=60, height=90)
    names = sorted(p.name for p in files)
    assert names == ["example_0.gif", "example_0_strip.png", "example_1.gif", "example_1_strip.png"]
    assert all(p.parent == rd / "render" and p.stat().st_size > 0 for p in files)
    with Image.open(rd / "render" / "example_0_strip.png") as im:
        strip = np.asarray(im.convert("RGB"))
    # three rows: ground truth, prediction, error heatmap -> saturated heatmap colours are present
    sat = strip.max(-1).astype(int) - strip.min(-1).astype(int)
    assert (sat > 150).sum() > 500


def test_heatmap_scale_depends_on_ground_truth_only(tmp_path):
    _, good = load_examples(make_run(tmp_path / "good", "a", 0.1))
    _, bad = load_examples(make_run(tmp_path / "bad", "b", 3.0))
    assert good[0].scale() == bad[0].scale() and good[0].scale().vmax > 0
    motion = np.linalg.norm(good[0].gt_mesh - good[0].gt_mesh[:1], axis=-1)
    assert 0.5 * np.percentile(motion, 99) <= good[0].scale().vmax <= np.percentile(motion, 99)


def test_render_examples_without_predicted_meshes(tmp_path):
    rd = make_run(tmp_path / "run", "mlp", 0.5, with_pred_mesh=False, n=1)
    faces, exs = load_examples(rd)
    assert exs[0].pred_mesh is None and [t.label for t in exs[0].tracks()] == ["ground truth", "prediction"]
    files = render_examples(rd, max_examples=1, time_budget_s=60, gif=False, height=80)
    assert [p.name for p in files] == ["example_0_strip.png"]


def test_render_examples_respects_the_time_budget(tmp_path):
    rd = make_run(tmp_path / "run", "mlp+pca", 1.0)
    files = render_examples(rd, max_examples=2, time_budget_s=0.0)
    assert files == []  # an exhausted budget renders nothing (speed itself is measured in benchmarks/)


def test_render_examples_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="examples.npz"):
        render_examples(tmp_path)


def test_compare_runs_draws_one_column_per_run(tmp_path):
    a = make_run(tmp_path / "a", "mlp+pca", 0.3)
    b = make_run(tmp_path / "b", "mlp+s2d", 2.0)
    out = compare_runs([a, b], tmp_path / "cmp.png", n_frames=3, height=80)
    one = compare_runs([a], tmp_path / "one.png", n_frames=3, height=80)
    with Image.open(out) as im2, Image.open(one) as im1:
        assert im2.size[0] > im1.size[0] + 60 and im2.size[1] == im1.size[1]


def test_cli_render_and_compare(tmp_path, capsys):
    a = make_run(tmp_path / "a", "mlp+pca", 0.3)
    b = make_run(tmp_path / "b", "lstm+pca", 1.0)
    assert main(["render", str(a), "--max-examples", "1", "--no-gif", "--height", "64"]) == 0
    assert (a / "render" / "example_0_strip.png").is_file()
    assert main(["render", str(a), str(b), "--compare", "--out", str(tmp_path / "fig6.png"), "--height", "64"]) == 0
    assert (tmp_path / "fig6.png").is_file()
    assert main(["render", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["render", str(tmp_path / "empty")]) == 2
    assert "examples.npz" in capsys.readouterr().err


def test_prediction_of_another_length_is_shown_on_the_ground_truth_time_axis(tmp_path):
    rd = make_run(tmp_path / "run", "mlp+pca", 0.0, n=1, length=10)
    with np.load(rd / "examples.npz") as z:
        arrays = dict(z)
    gt = arrays["gt_mesh_0"]
    pos = np.linspace(0, 9, 19)
    lo, hi = np.floor(pos).astype(int), np.minimum(np.floor(pos).astype(int) + 1, 9)
    w = (pos - lo)[:, None, None]
    arrays["pred_mesh_0"] = ((1 - w) * gt[lo] + w * gt[hi]).astype(np.float32)  # 19 frames, same motion
    arrays.pop("pred_lm_0")
    np.savez(rd / "examples.npz", **arrays)
    _, (ex,) = load_examples(rd)
    assert ex.resampled_from == 19 and ex.pred_mesh.shape == gt.shape and "resampled from 19" in ex.title
    np.testing.assert_allclose(ex.pred_mesh, gt, atol=1e-4)
