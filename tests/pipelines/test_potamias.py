"""Direct pipelines: the phase rule, potamias's controls, its fit, and e2e with ``--pipeline``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.runner import execute
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.datasets.phases import apex_magnitude, measure_timing, parse_timing, phase_amplitude
from fc4dfs.plugins.contracts import Budget, ComponentError
from fc4dfs.zoo.pipelines.potamias import PotamiasPipeline
from limits import assert_below


def test_timing_extraction_on_a_curve_with_known_phases():
    """A mesh moved along a piecewise-linear amplitude (onset 8, apex 20, offset 28, rest 36 of 41 frames):
    the rule finds the frame where each threshold is crossed."""
    t = 41
    declared = {"onset": 8 / 40, "apex": 20 / 40, "offset": 28 / 40, "rest": 36 / 40}
    amp = phase_amplitude(declared, t)
    rng = np.random.default_rng(0)
    neutral = rng.normal(size=(50, 3)).astype(np.float32) * 30
    frames = neutral[None] + amp[:, None, None] * rng.normal(size=(1, 50, 3)).astype(np.float32) * 4
    got = {k: v * (t - 1) for k, v in measure_timing(frames).items()}
    # 10 % / 90 % of a 12-frame rise are crossed 1.2 / 10.8 frames after the onset; the fall likewise
    expected = {"onset": 8 + 1.2, "apex": 8 + 10.8, "offset": 28 + 0.8, "rest": 28 + 7.2}
    for k, want in expected.items():
        assert abs(got[k] - want) <= 1.0, f"{k}: measured frame {got[k]:.1f}, expected {want:.1f} (limit 1 frame)"
    n2e = measure_timing(neutral[None] + phase_amplitude({"onset": 0.1, "apex": 0.6, "offset": 1.0}, t)[:, None, None]
                         * np.ones((1, 50, 3), np.float32))
    assert n2e["offset"] == 1.0 and n2e["rest"] == 1.0


def test_parse_timing_names_the_problem():
    assert parse_timing("onset=0.1,apex=0.4,offset=0.8") == {"onset": 0.1, "apex": 0.4, "offset": 0.8}
    with pytest.raises(ValueError, match="onset <= apex"):
        parse_timing("onset=0.5,apex=0.4,offset=0.8")
    with pytest.raises(ValueError, match="lacks offset"):
        parse_timing("onset=0.1,apex=0.4")
    with pytest.raises(ValueError, match="cannot read"):
        parse_timing("onset:0.1")


def test_synthetic_sequences_expose_intensity_and_timing():
    from fc4dfs.datasets.synthetic import load_synthetic

    ds = load_synthetic(resolution="small", identities=4)
    s = ds.sequences[0]
    assert s.intensity is not None and 0.5 < s.intensity < 1.5
    tm = s.timing
    assert 0.0 <= tm["onset"] <= tm["apex"] <= tm["offset"] <= tm["rest"] <= 1.0
    assert tiny_dataset().sequences[0].intensity is None  # a dataset that does not know it


@pytest.fixture(scope="module")
def tiny_fitted():
    ds = tiny_dataset()
    train_ids, _ = ds.generator_split()
    p = PotamiasPipeline(decoder="blendshapes")
    p.fit(ds.subset(train_ids), Budget("smoke", {"epochs": 30, "max_sequences": 36}), seed=0, progress=False)
    return ds, p


def test_intensity_is_monotonic_on_a_toy_model(tiny_fitted):
    """Higher requested intensity, larger apex displacement, for every held-out condition."""
    ds, p = tiny_fitted
    _, test_ids = ds.generator_split()
    seqs = [s for s in ds.sequences if s.identity in test_ids][:4]
    levels = [0.25, 0.5, 1.0, 1.5]
    for s in seqs:
        out = p.synthesize(np.repeat(ds.neutral(s.identity)[None], len(levels), 0), [s.label] * len(levels), 20,
                           intensity=levels)
        mags = [apex_magnitude(m) for m in out]
        assert all(b > a for a, b in zip(mags, mags[1:])), f"{s.label}: apex mm {np.round(mags, 3)} at {levels}"


def test_pipeline_refuses_controls_it_lacks_and_bad_values(tiny_fitted):
    ds, p = tiny_fitted
    mesh = ds.neutral(ds.identities[-1])[None]
    with pytest.raises(ComponentError, match=r"intensity must be in \[0, 1.5\]"):
        p.synthesize(mesh, [ds.labels[0]], 10, intensity=1.6)

    class NoControls(PotamiasPipeline):
        name = "no_controls"
        controls = frozenset()

    q = NoControls.__new__(NoControls)
    q.__dict__.update(p.__dict__)
    for kw in ({"intensity": 0.5}, {"timing": {"onset": 0.1, "apex": 0.4, "offset": 0.8}}):
        with pytest.raises(ComponentError, match=f"cannot control {next(iter(kw))}"):
            q.synthesize(mesh, [ds.labels[0]], 10, **kw)


def test_potamias_overfits_training_sequences_beyond_the_static_baseline():
    """Trained on one identity's sequences, potamias reproduces them far better than holding the neutral."""
    ds = tiny_dataset()
    ident = ds.identities[0]
    train = ds.subset([ident])
    p = PotamiasPipeline()
    p.fit(train, Budget("smoke", {"epochs": 60, "lr": 3e-3, "max_sequences": None, "frame_pairs": None}),
          seed=0, progress=False)
    errs, static = [], []
    for s in train.sequences:
        gt = np.asarray(s.frames, np.float32)
        out = p.synthesize(ds.neutral(ident)[None], [s.label], s.length, timing=measure_timing(gt))[0]
        errs.append(np.linalg.norm(out - gt, axis=-1).mean())
        static.append(np.linalg.norm(gt - gt[:1], axis=-1).mean())
    err, limit = float(np.mean(errs)), 0.5 * float(np.mean(static))
    assert_below(err, limit, "potamias (limit half the static-neutral error)", " mm")


def test_e2e_runs_a_pipeline_beside_the_chains(test_registry, tmp_path: Path):
    cfg = RunConfig(protocol="e2e", dataset="tiny", pipeline="potamias", budget="smoke",
                    protocol_options={"intensities": [0.5, 1.0, 1.5]})
    reg = test_registry
    res = execute(cfg, out_dir=tmp_path, leaderboard=tmp_path / "lb.csv", progress=False, reg=reg, render=False)
    main_row = res.record["rows"][0]
    assert {"e_lm", "e_mesh", "timing_err", "intensity_r2", "intensity_slope_err"} <= set(main_row["metrics"])
    assert all(np.isfinite(v) for v in main_row["metrics"].values())
    flat = res.record["rows_flat"][0]
    assert (flat["generator"], flat["decoder"]) == ("potamias", "direct")
    per_item = json.loads((res.run_dir / "per_item.json").read_text())
    assert len(per_item["e2e"]["e_mesh"]) == main_row["n_items"]
    with pytest.raises(UserError, match="--pipeline replaces the generator and decoder; drop --dec"):
        execute(RunConfig(protocol="e2e", dataset="tiny", pipeline="potamias", decoder="sgd_linear",
                          budget="smoke"), out_dir=tmp_path, leaderboard=None, progress=False, reg=reg)
    with pytest.raises(UserError, match="does not run direct pipelines"):
        execute(RunConfig(protocol="decoder-cv", dataset="tiny", pipeline="potamias", budget="smoke"),
                out_dir=tmp_path, leaderboard=None, progress=False, reg=reg)


def test_reproduce_table_p_writes_table_figure_and_verdict(test_registry, tmp_path: Path):
    """reproduce --tables P: Potamias et al. Table 2 for both pipelines, Fig. 5, and the paired-bootstrap claim."""
    from fc4dfs.benchmark import reproduce as rp

    path = rp.reproduce(dataset="tiny", budget="smoke", out_dir=tmp_path / "runs", report_dir=tmp_path / "report",
                        seeds=[0], tables=("P",), progress=False, reg=test_registry, log=lambda s: None,
                        dataset_options={})
    report = path.read_text()
    assert "Potamias et al. 2020 Table 2" in report
    table = [line for line in report.splitlines() if line.startswith("| Proposed") or line.startswith("| Baseline")]
    assert len(table) == 4 and all("—" not in line.split("|")[-3] for line in table[:2]), table
    claim = next(line for line in report.splitlines() if line.startswith("| potamias beats the PCA blendshape"))
    assert any(v in claim for v in ("holds", "contradicted", "not significant")), claim
    assert (tmp_path / "report" / "fig5-frame-error.png").stat().st_size > 1000
    # Table 3: per-class precision / recall / F1 of Potamias et al.'s classifier, three models, the paper's Total
    assert "Potamias et al. 2020 Table 3" in report
    total = next(line for line in report.splitlines() if line.startswith("| **Total**")).split("|")[2:-1]
    assert len(total) == 9 and all(0.0 <= float(v) <= 1.0 for v in total), total
    assert "| paper Total | 0.69 | 0.69 | 0.68 | 0.58 | 0.57 | 0.57 | 0.70 | 0.70 | 0.68 |" in report
    record = json.loads(next((tmp_path / "runs").glob("e2e_tiny_potamias_*/record.json")).read_text())
    assert record["config"]["protocol_options"] == {"classifiers": "papers"}, record["config"]
