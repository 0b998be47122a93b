"""Skeleton figures: `fc4dfs-bench list` latency (target < 2 s) and leaderboard append throughput."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fc4dfs.benchmark import leaderboard as lb


def test_list_latency(benchmark):
    def run():
        subprocess.run([sys.executable, "-m", "fc4dfs.benchmark.cli", "list"], check=True, capture_output=True)

    benchmark.pedantic(run, rounds=5, iterations=1)
    print(f"\nfc4dfs-bench list: median {benchmark.stats['median']:.3f} s (target < 2 s)")


def test_leaderboard_append(benchmark, tmp_path: Path):
    path = tmp_path / "lb.csv"
    lb.append_rows(path, [{"run_id": f"r{i}", "protocol": "e2e", "dataset": "d", "status": "ok", "e_mesh": i}
                          for i in range(1000)])
    counter = iter(range(10**9))

    def append():
        i = next(counter)
        lb.append_rows(path, [{"run_id": f"new{i}", "protocol": "e2e", "dataset": "d", "status": "ok", "e_mesh": 1.0}])

    benchmark(append)
    print(f"\nappend one row to a 1,000-row leaderboard: median {benchmark.stats['median'] * 1000:.1f} ms")
