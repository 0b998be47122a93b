"""Generation time and peak memory of the synthetic dataset at 1x, 10x and 100x the default size.

    .venv/bin/pytest benchmarks/test_bench_synthetic.py -s

Each size is generated in a fresh process with a private cache directory (deleted afterwards),
so the peak resident set size (``ru_maxrss``) is that of one build plus opening the result.
Generation is single-threaded: its CPU time is what it takes on an idle machine, the wall time
also counts waiting for a busy CPU.
Targets (issue 3): the default dataset in <= 10 s on a 2-core CPU; peak RSS <= 1 GB at every
size, flat as the number of sequences grows.

1x and 10x use the default resolution (~1.7 k vertices). 100x (28,800 sequences, Florence4D's
scale of 100 identities x 72 expressions) writes ~20 GB at that resolution, so by default it
runs at ``resolution=small`` (~6 GB); set ``FC4DFS_BENCH_FULL=1`` for the default resolution.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

FULL = os.environ.get("FC4DFS_BENCH_FULL") == "1"
SIZES = {
    "1x": dict(),                                                   # 12 x 12 x 2 = 288 sequences
    "10x": dict(identities=40, expressions=36, repetitions=2),      # 2,880 sequences
    "100x": dict(identities=100, expressions=72, repetitions=4,     # 28,800 sequences
                 **({} if FULL else {"resolution": "small"})),
}

CHILD = r"""
import json, os, resource, sys, time
opts = json.loads(sys.argv[1])
from fc4dfs.datasets.synthetic import load_synthetic
t0, c0 = time.perf_counter(), time.process_time()
ds = load_synthetic(progress=False, **opts)
gen, cpu = time.perf_counter() - t0, time.process_time() - c0
t1 = time.perf_counter()
ds = load_synthetic(progress=False, **opts)
reload = time.perf_counter() - t1
frames = sum(s.length for s in ds.sequences)
size = sum(f.stat().st_size for f in ds.cache_path.iterdir())
print(json.dumps({"generate_s": gen, "generate_cpu_s": cpu, "reload_s": reload, "sequences": len(ds.sequences),
                  "frames": frames, "vertices": ds.topology.num_vertices, "bytes": size,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(opts: dict) -> dict:
    tmp = tempfile.mkdtemp(prefix="fc4dfs-bench-synthetic-")
    try:
        env = {**os.environ, "FC4DFS_CACHE": tmp, "FC4DFS_PROGRESS": "0", "OPENBLAS_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(opts)], env=env, check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_generation_time_and_peak_memory(benchmark, size):
    opts = SIZES[size]
    result: dict = {}

    def once() -> None:
        result.update(_run(opts))

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    benchmark.extra_info["options"] = opts
    print(f"\nsynthetic {size} {opts}: {result['sequences']} sequences, {result['frames']} frames x "
          f"{result['vertices']} vertices, {result['bytes'] / 2**20:.0f} MiB on disk; generated in "
          f"{result['generate_s']:.1f} s ({result['generate_cpu_s']:.1f} s CPU), reopened in "
          f"{result['reload_s']:.2f} s; "
          f"peak RSS {result['peak_rss_mb']:.0f} MB")
    assert result["peak_rss_mb"] < 1024
