"""Label-apex blendshapes and their non-negative weight curves."""
from __future__ import annotations

import json

import numpy as np
import pygltflib

from fc4dfs.benchmark.export import write_morph_glb, write_weight_curves
from fc4dfs.benchmark.ownface.blendshapes import apex_targets, fit_weights
from limits import assert_above, assert_below


def test_apex_targets_and_weights_recover_a_blend(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 3)) * 50
    shapes = rng.normal(size=(3, 40, 3)) * 2
    ramp = np.linspace(0, 1, 9)[:, None, None]
    seqs = {f"l{k}": base + ramp * shapes[k] * np.r_[0.2, 1.0, 0.5][k] for k in range(3)}
    bs = apex_targets(seqs)
    assert bs.names == ["l0", "l1", "l2"]
    np.testing.assert_allclose(bs.targets[1], shapes[1], atol=1e-5)  # apex = last frame, full amplitude
    true_w = np.abs(rng.normal(size=(9, 3)))
    true_w[0] = 0
    frames = base + np.einsum("tk,kvc->tvc", true_w, bs.targets.astype(np.float64))
    w, recon, err = fit_weights(frames, bs)
    np.testing.assert_allclose(w, true_w, atol=1e-4)
    assert (w >= 0).all()
    assert_below(err["mean"], 1e-4 * err["motion_mean"],
                 "reconstruction error in the targets' span (limit 1e-4 x motion)")
    # a motion outside the targets' span is reproduced as well as non-negative weights can: error reported
    off = frames + np.linspace(0, 1, 9)[:, None, None] * rng.normal(size=(40, 3))
    _, _, err2 = fit_weights(off, bs)
    assert_above(err2["mean"], 10 * err["mean"], "error of a motion outside the span (limit 10 x the in-span error)")


def test_blendshape_glb_and_curves(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(30, 3)) * 50
    faces = np.array([[i, i + 1, i + 2] for i in range(28)])
    targets = rng.normal(size=(2, 30, 3))
    weights = np.abs(rng.normal(size=(5, 2)))
    glb = write_morph_glb(tmp_path / "b.glb", base, faces, targets, ["jaw", "smile"], weights, 25.0, units="m")
    g = pygltflib.GLTF2().load(str(glb))
    assert g.meshes[0].extras["targetNames"] == ["jaw", "smile"] and g.nodes[0].scale == [1.0] * 3
    times = g.accessors[g.animations[0].samplers[0].input]
    assert times.count == 5 and abs(times.max[0] - 4 / 25.0) < 1e-6
    csv, js = write_weight_curves(tmp_path / "b", ["jaw", "smile"], weights, 25.0, {"x": 1})
    lines = csv.read_text().splitlines()
    assert lines[0] == "frame,time_s,jaw,smile" and len(lines) == 6
    doc = json.loads(js.read_text())
    np.testing.assert_allclose(doc["weights"]["smile"], weights[:, 1], atol=1e-6)
    assert doc["fps"] == 25.0 and doc["metadata"] == {"x": 1}
