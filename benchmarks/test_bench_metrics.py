"""Cost of scoring one e2e evaluation: every metric on a Table-1-sized batch.

    .venv/bin/pytest benchmarks/test_bench_metrics.py

The batch mimics the synthetic test split (72 sequences, 13-82 frames, ~1.7 k vertices,
68 landmarks) with random predictions; the classifiers are trained at the smoke budget on
``tiny_dataset`` (their speed, not their accuracy, matters here), so arrays use its topology
but the synthetic split's lengths and count. Target: all metrics of one run well under a
second each on a 2-core CPU, so evaluation never dominates a ``reproduce`` run.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fc4dfs.benchmark.classifiers import ClassifierBank
from fc4dfs.benchmark.metrics.classification import (FrechetDistance, LandmarkClassificationAccuracy,
                                                     MeshClassificationAccuracy)
from fc4dfs.benchmark.metrics.errors import LandmarkError, MeshError
from fc4dfs.benchmark.metrics.temporal import Diversity, Smoothness
from fc4dfs.benchmark.stats import paired_bootstrap
from fc4dfs.plugins.contracts import EvalContext, EvalItem
from fc4dfs.datasets.fixtures import tiny_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FC4DFS_CACHE", str(tmp_path_factory.mktemp("bench-metrics")))
        mp.setenv("FC4DFS_PROGRESS", "0")
        ds = tiny_dataset()
        bank = ClassifierBank(ds, budget="smoke")
        bank.get("landmarks"), bank.get("mesh")
        rng = np.random.default_rng(0)
        seqs = ds.sequences
        items = []
        for i in range(72):
            s = seqs[i % len(seqs)]
            t = int(rng.integers(13, 83))
            frames = np.asarray(s.resampled(t).frames)
            lm = ds.topology.landmarks(frames)
            noisy = (frames + rng.normal(0, 1.0, frames.shape)).astype(np.float32)
            items.append(EvalItem(s.identity, s.label, 30.0, lm, pred_landmarks=ds.topology.landmarks(noisy),
                                  gt_mesh=frames, pred_mesh=noisy,
                                  samples=np.stack([lm + rng.normal(0, 1.0, lm.shape).astype(np.float32)
                                                    for _ in range(3)])))
        yield items, EvalContext(ds.topology, ds.labels, classifier=bank.get)


@pytest.mark.parametrize("cls", [LandmarkError, MeshError, LandmarkClassificationAccuracy,
                                 MeshClassificationAccuracy, FrechetDistance, Diversity, Smoothness])
def test_metric_speed(benchmark, setup, cls) -> None:
    items, ctx = setup
    metric = cls()
    value = benchmark.pedantic(metric.compute, args=(items, ctx), rounds=3, iterations=1)
    assert np.isfinite(value.value)


def test_paired_bootstrap_speed(benchmark) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=72), rng.normal(size=72)
    r = benchmark.pedantic(paired_bootstrap, args=(a, b), kwargs={"n_boot": 2000}, rounds=3, iterations=1)
    assert r["lo"] <= r["diff"] <= r["hi"]
