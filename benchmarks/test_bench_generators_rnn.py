"""Generation speed of the frame-by-frame generators (issue 5).

Targets on the 2-core CPU: one 30-frame sequence from fc_lstm in <= 10 ms; a batch of 256
30-frame sequences at >= 1,000 sequences/s. Run: ``.venv/bin/pytest benchmarks/test_bench_generators_rnn.py``.
The models are trained for one epoch only: speed does not depend on the weights. Generation runs
on one thread: the per-step matrices are small, and a second thread only adds synchronisation (and,
on a shared machine, waits for a busy core).
"""
import numpy as np
import pytest
import torch

from fc4dfs.plugins.contracts import Budget
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.zoo.generators.fc_lstm import FCLSTMGenerator
from fc4dfs.zoo.generators.lstm import LSTMGenerator
from fc4dfs.zoo.generators.mlp import MLPGenerator

CLASSES = {"mlp": MLPGenerator, "lstm": LSTMGenerator, "fc_lstm": FCLSTMGenerator}


@pytest.fixture(scope="module", params=list(CLASSES))
def trained(request):
    torch.set_num_threads(1)
    ds = tiny_dataset()
    g = CLASSES[request.param]()  # default architecture, as benchmarked in the protocols
    g.fit(ds.subset(ds.generator_split()[0]), Budget("smoke", {"epochs": 1}), progress=False)
    return request.param, g, ds


def _inputs(ds, batch: int):
    nlm = ds.topology.landmarks(np.stack([ds.neutral(ds.identities[k % len(ds.identities)]) for k in range(batch)]))
    return nlm, [ds.labels[k % len(ds.labels)] for k in range(batch)]


def test_latency_one_sequence_30_frames(benchmark, trained):
    name, g, ds = trained
    nlm, labels = _inputs(ds, 1)
    g.generate(nlm, labels, 30, fps=30.0)  # warm-up
    out = benchmark(g.generate, nlm, labels, 30, 30.0)
    assert out.shape[:2] == (1, 30)
    benchmark.extra_info["target_ms"] = 10.0


def test_throughput_batch_256(benchmark, trained):
    name, g, ds = trained
    nlm, labels = _inputs(ds, 256)
    g.generate(nlm, labels, 30, fps=30.0)
    out = benchmark(g.generate, nlm, labels, 30, 30.0)
    assert out.shape[:2] == (256, 30)
    benchmark.extra_info["sequences_per_s"] = 256 / benchmark.stats.stats.mean
    benchmark.extra_info["target_sequences_per_s"] = 1000.0
