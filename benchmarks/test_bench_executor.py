"""Wall time of the local and the Ray executor on one plan, and Ray's overhead per task.

    .venv/bin/pytest benchmarks/test_bench_executor.py -s

The issue asks for ``reproduce --tables 2 --budget quick``; on the 2-core machine that is tens of
minutes per executor, so this measures ``reproduce --tables 3 --budget smoke`` (five single-thread
runs sharing one decoder): local ``--threads 1`` one after another, against Ray with 2 CPUs and one
CPU per run. Each executor starts from an empty component store and runs folder (nothing reused).
On an idle 2-core machine the ratio local / ray approaches 2 for runs of equal length; the shared
decoder (trained first, alone) and unequal run lengths keep it lower. Set ``FC4DFS_BENCH_TABLES`` and
``FC4DFS_BENCH_BUDGET`` for the issue's configuration.

The per-task overhead is the round trip of an empty Ray task with the same resource declaration
(submit, schedule on a warm worker, return), the part of a run's time the Ray executor adds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[distributed]')")

TABLES = os.environ.get("FC4DFS_BENCH_TABLES", "3")
BUDGET = os.environ.get("FC4DFS_BENCH_BUDGET", "smoke")


def _reproduce(executor_args: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FC4DFS_CACHE": str(Path(tmp) / "cache"), "FC4DFS_PROGRESS": "0"}
        cmd = [sys.executable, "-m", "fc4dfs.benchmark.cli", "reproduce", "--dataset", "synthetic", "--budget",
               BUDGET, "--tables", TABLES, "--out", str(Path(tmp) / "runs"), "--report-dir", str(Path(tmp) / "rep"),
               *executor_args]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr[-3000:]
        return wall


def test_wall_ratio_local_over_ray(benchmark):
    times = {}

    def both() -> None:
        times["local"] = _reproduce(["--threads", "1"])
        times["ray"] = _reproduce(["--executor", "ray", "--cpus-per-run", "1"])

    benchmark.pedantic(both, rounds=1, iterations=1)
    ratio = times["local"] / times["ray"]
    benchmark.extra_info.update({"tables": TABLES, "budget": BUDGET, "local_s": round(times["local"], 1),
                                 "ray_s": round(times["ray"], 1), "ratio_local_over_ray": round(ratio, 2)})
    print(f"\nreproduce --tables {TABLES} --budget {BUDGET}: local {times['local']:.1f} s, "
          f"ray {times['ray']:.1f} s, local/ray {ratio:.2f}")


def test_ray_overhead_per_task(benchmark):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        noop = ray.remote(lambda: None).options(num_cpus=1, num_gpus=0, max_retries=0)
        ray.get([noop.remote() for _ in range(4)])  # start the workers
        benchmark.pedantic(lambda: ray.get(noop.remote()), rounds=50, iterations=1)
        benchmark.extra_info["overhead_per_task_ms"] = round(benchmark.stats.stats.median * 1e3, 2)
        print(f"\nRay round trip of an empty task: {benchmark.stats.stats.median * 1e3:.2f} ms (median of 50)")
    finally:
        ray.shutdown()
