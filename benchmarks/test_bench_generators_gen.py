"""Sampling speed (and sample quality) of the generative baselines: ``ddpm`` (DDPM-2000 vs DDIM-50) and ``lm4dgan``.

Run: ``.venv/bin/pytest benchmarks/test_bench_generators_gen.py -s``. Target (issue 7): DDIM-50 at
least 30x faster per sequence than the paper's 2,000-step DDPM, batched (16 sequences of 30
frames per reverse pass), with classification accuracy within 2 points and FID within 10 % of it.

Timings use one reverse pass (``harmonize_iters=1``, i.e. Alg. 1/3 cost; Alg. 4 multiplies both
samplers by the same number of passes) and the ``quick`` architecture, trained for a few
iterations only: speed does not depend on the weights. ``test_quality_ddpm2000_vs_ddim50`` trains
the quick budget for real on the synthetic dataset (small resolution) and scores both samplers
with the suite's landmark classifier (accuracy, FID) plus landmark error and sample diversity;
it takes several minutes on a 2-core CPU.

Screening of the ``ddpm`` quick budget on ``synthetic`` (small): Alg. 4 from each of the 72
held-out test sequences' neutral at its own length, one seed, scored with the suite's landmark
classifier (real test sequences: CA 98.6 %; holding the neutral: E_lm 1.87 mm); jerk = mean
frame-to-frame acceleration over the real sequence's; training CPU seconds on one thread. s =
``cfg_scale``; harmonize 1 and DDIM-50 unless stated. The default is the row marked *.

====================================================  ====================  =====  =====  =====  ====  =====  =====
model (representation, guidance, prediction, schedule)  sampling              CA %   FID    E_lm   div   jerk   train
====================================================  ====================  =====  =====  =====  ====  =====  =====
absolute, classifier (paper), eps, linear-2000 [1]     eta 0.5               61.1   23.2   2.40   -     4.3x   -
absolute, classifier (paper), eps, linear-2000 [1]     DDPM-2000             21     -      -      -     -      -
absolute, cfg, eps, linear-2000                        s 2, eta 0.5          16.7   48.7   3.33   2.62  142x   76
absolute, cfg, eps, linear-2000                        s 3, eta 0.5          23.6   49.4   3.27   2.64  142x   76
absolute, cfg, x0, cosine-1000                         s 1, eta 0            11.1   74.3   3.01   1.10  61x    79
absolute, cfg, x0, cosine-1000                         s 2, eta 0            12.5   65.2   2.91   1.10  61x    79
absolute, cfg, x0, cosine-1000                         s 3, eta 0            16.7   48.6   2.82   1.11  61x    79
absolute, cfg, x0, cosine-1000                         s 2, eta 0.5          13.9   56.7   2.98   1.06  61x    79
absolute, cfg, x0, cosine-1000                         s 2, eta 0.5, smooth 1 12.5  59.7   2.84   0.70  8.8x   79
absolute, cfg, x0, cosine-1000                         s 2, eta 0.5, smooth 2  9.7  63.1   2.77   0.58  2.9x   79
motion, cfg, eps, linear-2000                          s 2, eta 0.5          68.1   13.8   2.04   2.08  104x   80
motion, cfg, eps, linear-2000                          s 2, eta 0.5, smooth 1 72.2  15.3   1.75   1.53  11x    80
motion, cfg, x0, cosine-1000                           s 1, eta 0            83.3   17.1   1.28   0.95  40x    75
motion, cfg, x0, cosine-1000                           s 2, eta 0            95.8    0.9   1.26   1.11  42x    75
motion, cfg, x0, cosine-1000                           s 3, eta 0            97.2    3.6   1.96   1.38  43x    75
motion, cfg, x0, cosine-1000                           s 2, eta 0, smooth 1  94.4    1.1   1.13   0.90  4.9x   75
motion, cfg, x0, cosine-1000                           s 2, eta 0.5          100.0   0.8   1.26   1.05  42x    77
motion, cfg, x0, cosine-1000                           s 3, eta 0.5          94.4    5.3   1.93   1.24  43x    77
motion, cfg, x0, cosine-1000 *                         s 2, eta 0.5, smooth 2 100.0  0.9  1.09   0.73  1.4x   72
motion, cfg, x0, cosine-1000                           ... smooth 3          100.0   1.2   1.10   0.66  0.8x   72
motion, cfg, x0, cosine-1000                           ... smooth 2, cfg_from 0.5  87.5  12.8  1.10  0.64  1.2x  72
motion, cfg, x0, cosine-1000                           ... smooth 1.5, cfg_from 0.5 87.5 12.5  1.09  0.68  2.0x  72
motion, cfg, x0, cosine-1000                           ... smooth 1.5        100.0   0.8   1.10   0.77  2.3x   72
motion, cfg, x0, cosine-1000                           ... smooth 2, cfg_from 0.25 90.3  9.1  1.06   0.64  1.2x   72
motion, cfg, x0, cosine-1000                           ... smooth 2, cfg_from 0.1  95.8  2.9  1.03   0.67  1.3x   72
motion, cfg, x0, cosine-1000                           ... smooth 2, harmonize 5   97.2  2.4  1.24   0.72  1.4x   72
====================================================  ====================  =====  =====  =====  ====  =====  =====

[1] measured earlier with this benchmark's ``_score`` (30-frame sequences).

Guidance cost (``cfg_every``, ``cfg_from`` / ``cfg_to``), screened with :func:`_screen` (the same
protocol; the classifier retrained for this dataset version, real test sequences CA 100 %; jerk
pooled over all frames, real 0.058 mm) on the default model trained with seeds 0 and 1 ("a / b"),
CA as the mean of 4 sampling seeds (one sequence = 1.4 points; per-seed range in brackets), the
other columns on sampling seed 0. guidance = unconditional network rows relative to every-step
guidance (CPU per step: ``test_guidance_cost_per_step``). The default is the row marked *.

==========================  ========  =================================  ===========  ===========  ===========  ===========
guidance                    rows      CA % (4 seeds)                     FID          E_lm         div          jerk
==========================  ========  =================================  ===========  ===========  ===========  ===========
none (s 1)                  0         73.6 [67-82] / 79.9 [76-85]        16.6 / 11.5  1.39 / 1.27  0.76 / 0.64  0.53 / 0.50
every step (cfg_every 1)    1         94.4 [92-97] / 94.4 [90-96]        3.23 / 3.35  1.33 / 1.12  1.02 / 0.76  0.74 / 0.73
cfg_every 2 *               0.5       94.4 [92-97] / 94.4 [90-96]        3.23 / 3.35  1.33 / 1.13  1.01 / 0.77  0.74 / 0.74
cfg_every 3                 0.34      94.4 [92-97] / 93.4 [89-96]        3.22 / 3.29  1.34 / 1.13  1.01 / 0.77  0.75 / 0.74
cfg_every 5                 0.2       95.5 [93-99] / 94.4 [90-96]        3.21 / 3.31  1.35 / 1.15  0.99 / 0.78  0.78 / 0.78
cfg_every 10                0.1       94.8 [90-100]                      4.20         1.46         1.05         0.89
cfg_every 25                0.04      93.1 [90-99]                       5.47         1.63         1.33         1.05
cfg_every 50                0.02      94.4 [90-100]                      9.52         3.09         2.16         1.66
cfg_to 0.5 (every step)     0.5       90.6 [86-93] / 95.5 [93-97]        4.38 / 3.81  1.27 / 1.13  0.87 / 0.70  0.65 / 0.62
cfg_from 0.5                0.5       89.9 [85-94]                       6.89         1.23         0.85         0.61
cfg_from 0.25, cfg_to 0.75  0.5       87.8 [85-92]                       8.58         1.26         0.77         0.59
cfg_from 0.1, cfg_to 0.6    0.5       88.5 [85-92]                       7.19         1.26         0.80         0.61
==========================  ========  =================================  ===========  ===========  ===========  ===========

Through ``fc4dfs-bench run --gen ddpm --dec s2d --dataset synthetic --budget quick`` (the default row,
shipped evaluator, real test sequences CA 100 %): CA 95.8 %, CA (mesh) 83.3 %, FID 1.06, E_lm 1.22 mm,
E_mesh 1.03 mm, diversity 0.79 mm, smoothness ratio 1.33 (|log| 0.62), intensity R^2 0.14 with slope
0.64 (intercept 0.71); 319 s training (generator and decoder), 176 s evaluation.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from fc4dfs.plugins.contracts import Budget
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.zoo.generators.ddpm import DDPMGenerator
from fc4dfs.zoo.generators.lm4dgan import LM4DGANGenerator

BATCH, LENGTH = 16, 30
_TIMES: dict[str, float] = {}


def _inputs(ds, batch: int):
    nlm = ds.topology.landmarks(np.stack([ds.neutral(ds.identities[k % len(ds.identities)]) for k in range(batch)]))
    return nlm, [ds.labels[k % len(ds.labels)] for k in range(batch)]


@pytest.fixture(scope="module")
def ddpm():
    torch.set_num_threads(2)
    ds = tiny_dataset()
    g = DDPMGenerator(guidance="classifier", harmonize_iters=1)  # the paper's guided samplers
    g.fit(ds.subset(ds.generator_split()[0]), Budget("quick", {"iterations": 10, "cls_iterations": 10, "block": 10}),
          progress=False)
    return g, ds


@pytest.mark.parametrize("sampler", ["ddim50", "ddpm2000"])
def test_sampling_time_per_sequence(benchmark, ddpm, sampler):
    g, ds = ddpm
    g.options.update(sampler=sampler[:4], sampling_steps=50)
    nlm, labels = _inputs(ds, BATCH)
    out = benchmark.pedantic(g.generate, args=(nlm, labels, LENGTH), kwargs={"seed": 0}, rounds=1, iterations=1)
    assert out.shape == (BATCH, LENGTH, nlm.shape[1], 3)
    per_seq = benchmark.stats.stats.mean / BATCH
    _TIMES[sampler] = per_seq
    benchmark.extra_info.update(seconds_per_sequence=per_seq, batch=BATCH, length=LENGTH)
    print(f"\n{sampler}: {per_seq * 1e3:.1f} ms per sequence (batch {BATCH}, {LENGTH} frames)")
    if len(_TIMES) == 2:
        speedup = _TIMES["ddpm2000"] / _TIMES["ddim50"]
        benchmark.extra_info["ddim50_speedup"] = speedup
        print(f"DDIM-50 speed-up over DDPM-2000: {speedup:.1f}x (target >= 30x)")
        assert speedup >= 30.0


def test_sampling_time_lm4dgan(benchmark):
    torch.set_num_threads(2)
    ds = tiny_dataset()
    g = LM4DGANGenerator()
    g.fit(ds.subset(ds.generator_split()[0]), Budget("quick", {"iterations": 2, "block": 2}), progress=False)
    nlm, labels = _inputs(ds, BATCH)
    g.generate(nlm, labels, LENGTH, seed=0)
    out = benchmark(g.generate, nlm, labels, LENGTH, None, 0)
    assert out.shape == (BATCH, LENGTH, nlm.shape[1], 3)
    per_seq = benchmark.stats.stats.mean / BATCH
    benchmark.extra_info["seconds_per_sequence"] = per_seq
    print(f"\nlm4dgan: {per_seq * 1e3:.3f} ms per sequence (batch {BATCH}, {LENGTH} frames)")


#: the guidance settings timed by ``test_guidance_cost_per_step`` (cfg_scale 1 = no guidance, the reference)
GUIDANCE_COST = {"unguided": {"cfg_scale": 1.0}, "every step": {}, "cfg_every 2 (default)": {"cfg_every": 2},
                 "cfg_to 0.5": {"cfg_to": 0.5}, "cfg_every 5": {"cfg_every": 5}}


def test_guidance_cost_per_step(benchmark):
    """Classifier-free guidance cost per DDIM step: process CPU time of one reverse pass (16 sequences
    of 30 frames, 50 steps, one thread) minus the unguided pass's, as a ratio to every-step guidance's
    (``cfg_every=1``), and the unconditional network rows as a ratio to every-step guidance's (counted)."""
    torch.set_num_threads(1)
    ds = tiny_dataset()
    g = DDPMGenerator(harmonize_iters=1, text_guidance=False)
    g.fit(ds.subset(ds.generator_split()[0]), Budget("quick", {"iterations": 10, "block": 10}), progress=False)
    nlm, labels = _inputs(ds, BATCH)
    model, forward = g.eps_model, g.eps_model.forward
    rows: list[int] = []

    def counting(x, t, *args, **kwargs):
        rows.append(x.shape[0] - BATCH)
        return forward(x, t, *args, **kwargs)

    cpu: dict[str, list[float]] = {name: [] for name in GUIDANCE_COST}
    null_rows: dict[str, int] = {}
    g.generate(nlm, labels, LENGTH, seed=0)  # warm-up
    for _ in range(7):  # interleaved rounds: load drifts hit every setting alike
        for name, opts in GUIDANCE_COST.items():
            g.options.update({"cfg_scale": 2.0, "cfg_every": 1, "cfg_to": 1.0, **opts})
            rows.clear()
            model.forward = counting
            t0 = time.process_time()
            g.generate(nlm, labels, LENGTH, seed=0)
            cpu[name].append(time.process_time() - t0)
            model.forward = forward
            null_rows[name] = sum(rows)
    g.options.update(cfg_scale=2.0, cfg_every=2, cfg_to=1.0)
    benchmark.pedantic(g.generate, args=(nlm, labels, LENGTH), kwargs={"seed": 0}, rounds=1, iterations=1)
    steps = g.options["sampling_steps"]
    med = {name: float(np.median(v)) for name, v in cpu.items()}
    ref = "every step"
    cost = {name: (med[name] - med["unguided"]) / (med[ref] - med["unguided"]) for name in cpu}
    forwards = {name: null_rows[name] / null_rows[ref] for name in cpu}
    benchmark.extra_info.update(cpu_ms_per_step={k: 1e3 * v / steps for k, v in med.items()},
                                guidance_cpu_ratio=cost, unconditional_rows_ratio=forwards)
    for name in cpu:
        print(f"\n{name}: {1e3 * med[name] / steps:.2f} ms CPU per step (batch {BATCH}), guidance cost "
              f"{cost[name]:.2f}x every-step guidance's, unconditional rows {forwards[name]:.2f}x", end="")
    print()
    assert null_rows[ref] == steps * BATCH and null_rows["cfg_every 2 (default)"] == steps * BATCH // 2


def _score(g: DDPMGenerator, test, clf, **sampler) -> dict[str, float]:
    """Alg. 4 (one pass) on the test sequences resampled to 30 frames, one batch per seed.

    Returns E_lm (mm), classifier accuracy (%), FID, diversity (mm between two seeds' samples of one
    condition), smoothness (mean frame-to-frame acceleration relative to the real sequences') and
    seconds per generated sequence.
    """
    from fc4dfs.benchmark.stats import frechet_distance

    gt = np.stack([s.resampled(LENGTH).landmarks for s in test])
    labels = [s.label for s in test]
    t0 = time.perf_counter()
    preds, alt = (_fill(g, gt, labels, seed, sampler) for seed in (0, 1))
    seconds = (time.perf_counter() - t0) / (2 * len(test))
    true = np.array([clf.labels.index(lab) for lab in labels])
    return {
        "e_lm_mm": float(np.linalg.norm(preds - gt, axis=-1).mean()),
        "accuracy": float(100 * np.mean(np.asarray(clf.predict(list(preds))) == true)),
        "fid": frechet_distance(np.asarray(clf.features(list(preds)), np.float64),
                                np.asarray(clf.features(list(gt)), np.float64)),
        "diversity_mm": float(np.linalg.norm(preds - alt, axis=-1).mean()),
        "smoothness": float(np.linalg.norm(np.diff(preds, 2, axis=1), axis=-1).mean()
                            / np.linalg.norm(np.diff(gt, 2, axis=1), axis=-1).mean()),
        "seconds_per_sequence": seconds,
    }


def _fill(g: DDPMGenerator, gt: np.ndarray, labels, seed: int, sampler: dict) -> np.ndarray:
    known = np.zeros_like(gt)
    known[:, 0] = gt[:, 0]
    mask = np.zeros(gt.shape[:2], dtype=bool)
    mask[:, 0] = True
    return g.fill(known, mask, labels, seed=seed, harmonize_iters=g.options["harmonize_iters"], **sampler)


def _screen(g: DDPMGenerator, test, clf, seeds: tuple[int, ...] = (0, 1), **sampler) -> dict[str, float]:
    """One screening row: Alg. 4 (``generate``'s pass count) from each test sequence's neutral at its
    own length, sequences of one length in one batch, scored on the first seed.

    Returns CA (%), FID, E_lm (mm), diversity (mm between the first two seeds' samples), jerk (mean
    frame-to-frame acceleration over the real sequences') and, with more than two seeds, the CA of
    each seed (``ca_seed<k>``).
    """
    from fc4dfs.benchmark.stats import frechet_distance

    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(test):
        by_length.setdefault(len(s.landmarks), []).append(i)
    gt = [s.landmarks for s in test]
    true = np.array([clf.labels.index(s.label) for s in test])
    runs = []
    for seed in seeds:
        preds: list[np.ndarray] = [np.empty(0)] * len(test)
        for length, idx in by_length.items():
            known = np.zeros((len(idx), length) + gt[idx[0]].shape[1:], np.float32)
            known[:, 0] = [gt[i][0] for i in idx]
            mask = np.zeros((len(idx), length), bool)
            mask[:, 0] = True
            out = g.fill(known, mask, [test[i].label for i in idx], seed=seed,
                         harmonize_iters=g.options["harmonize_iters"], **sampler)
            for j, i in enumerate(idx):
                preds[i] = out[j]
        runs.append(preds)
    preds = runs[0]
    accel = lambda xs: np.mean(np.concatenate([np.linalg.norm(np.diff(x, 2, axis=0), axis=-1).ravel() for x in xs]))
    row = {
        "ca": float(100 * np.mean(np.asarray(clf.predict(preds)) == true)),
        "fid": frechet_distance(np.asarray(clf.features(preds), np.float64), np.asarray(clf.features(gt), np.float64)),
        "e_lm_mm": float(np.mean([np.linalg.norm(p - q, axis=-1).mean() for p, q in zip(preds, gt)])),
        "diversity_mm": float(np.mean([np.linalg.norm(p - q, axis=-1).mean() for p, q in zip(runs[0], runs[1])])),
        "jerk": float(accel(preds) / accel(gt)),
    }
    if len(seeds) > 2:
        row.update({f"ca_seed{seed}": float(100 * np.mean(np.asarray(clf.predict(r)) == true))
                    for seed, r in zip(seeds, runs)})
    return row


@pytest.mark.slow
def test_quality_ddpm2000_vs_ddim50(benchmark, tmp_path_factory, monkeypatch):
    """Accuracy / FID / landmark error / diversity of both samplers, classifier guidance (the paper's)
    beside classifier-free guidance (the default), each on one quick-budget model.

    With the paper's eps-prediction / linear-2000 backbone and classifier guidance: DDIM-50 at eta
    0.5 and the paper's 2,000 ancestral steps, the 2,000-step sampler with guidance refined from the
    step mean (``guide_from_mean``) and DDIM at eta 0 and 1 (where the samplers' difference comes
    from: the guidance refinement's interplay with each step's noise). Then the default model
    (x_0-prediction, cosine-1000, classifier-free guidance) at guidance scales 1 and its default.
    """
    from fc4dfs.benchmark.classifiers import ClassifierBank
    from fc4dfs.datasets.synthetic import load_synthetic

    torch.set_num_threads(1)
    ds = load_synthetic(resolution="small", progress=False)
    train_ids, test_ids = ds.generator_split()
    clf = ClassifierBank(ds, train_ids, budget="quick").get("landmarks")
    test = [s for s in ds.sequences if s.identity in test_ids]
    g = DDPMGenerator(harmonize_iters=1, guidance="classifier", parameterization="eps", schedule="linear",
                      diffusion_steps=2000, smooth_x0=0.0, eta=0.5)
    g.fit(ds.subset(train_ids), Budget("quick"), seed=0, progress=False)
    cfg = DDPMGenerator(harmonize_iters=1)
    cfg.fit(ds.subset(train_ids), Budget("quick"), seed=0, progress=False)
    rows = {"ddim50": benchmark.pedantic(_score, args=(g, test, clf), kwargs={"sampler": "ddim", "sampling_steps": 50},
                                         rounds=1, iterations=1),
            "ddpm2000": _score(g, test, clf, sampler="ddpm"),
            "ddpm2000_guide_from_mean": _score(g, test, clf, sampler="ddpm", guide_from_mean=True),
            "ddim50_eta0": _score(g, test, clf, sampler="ddim", sampling_steps=50, eta=0.0),
            "ddim50_eta1": _score(g, test, clf, sampler="ddim", sampling_steps=50, eta=1.0),
            "cfg_scale1": _score(cfg, test, clf, cfg_scale=1.0),
            "cfg_default": _score(cfg, test, clf)}
    gt = [s.resampled(LENGTH).landmarks for s in test]
    rows["real"] = {"accuracy": float(100 * np.mean(np.asarray(clf.predict(gt)) ==
                                                    np.array([clf.labels.index(s.label) for s in test])))}
    rows["static_neutral"] = {"e_lm_mm": float(np.mean([np.linalg.norm(q - q[:1], axis=-1).mean() for q in gt]))}
    benchmark.extra_info.update(rows)
    for name, row in rows.items():
        print(f"\n{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), end="")
    print()
