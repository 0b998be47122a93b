"""Speed of loading the shipped ``synthetic`` evaluator (issue 14: < 1 s, instead of training classifiers).

Run::

    .venv/bin/pytest benchmarks/test_bench_evaluators.py

Measures :func:`fc4dfs.benchmark.evaluators.load_evaluator` of the package's
``evaluator_files/synthetic.safetensors`` (header check, SHA-256 of the tensors, both classifiers
restored) for the default synthetic dataset; the dataset itself is built once, outside the timing.
"""
from __future__ import annotations

import pytest

from fc4dfs.benchmark import evaluators as ev
from fc4dfs.benchmark.runner import load_dataset

TARGET_S = 1.0


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", {})


def test_load_shipped_synthetic_evaluator(benchmark, synthetic):
    path = ev.shipped_file(synthetic, synthetic.generator_split()[0], 0)
    assert path is not None, "no shipped evaluator for this synthetic version: run scripts/make_evaluators.sh"
    frozen = benchmark(ev.load_evaluator, path, synthetic)
    assert frozen.content_hash
    mean = benchmark.stats.stats.mean
    print(f"load {mean:.3f} s (target {TARGET_S} s, ratio {mean / TARGET_S:.2f})")
