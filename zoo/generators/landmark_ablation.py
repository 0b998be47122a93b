"""Landmark-level version of FC-4DFS Tables 3-4 for the frame-by-frame generators.

Trains each variant on the generator split's training identities and reports the per-landmark
Euclidean error (mm, mean ± std pooled over landmarks, frames and test sequences) of sequences
generated at several lengths from each test identity's neutral landmarks and the label, against
the ground truth resampled to that length (same duration). The mesh-level table is the
``length-ablation`` protocol; this one needs no decoder.

    python -m fc4dfs.zoo.generators.landmark_ablation --dataset synthetic --budget quick
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Sequence as Seq

import numpy as np

from fc4dfs.datasets.base import Dataset
from fc4dfs.plugins.contracts import Budget, Generator

#: FC-4DFS Table 3 rows: (row name, generator name, options)
TABLE3_VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("mlp", "mlp", {"temporal_alpha": 0.0}),
    ("lstm", "lstm", {"temporal_alpha": 0.0}),
    ("lstm + loss-temp", "lstm", {"temporal_alpha": 0.3}),
    ("lstm + freq-info", "fc_lstm", {"temporal_alpha": 0.0}),
    ("lstm + freq-info + loss-temp (fc_lstm)", "fc_lstm", {"temporal_alpha": 0.3}),
]
#: FC-4DFS Table 4: alpha of the temporal coherence loss for FC-LSTM
ALPHA_SWEEP: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
LENGTHS: tuple[int, ...] = (20, 25, 30)


def generator_class(name: str) -> type[Generator]:
    """The class of one of this module's generators by registered name."""
    from fc4dfs.zoo.generators.fc_lstm import FCLSTMGenerator
    from fc4dfs.zoo.generators.lstm import LSTMGenerator
    from fc4dfs.zoo.generators.mlp import MLPGenerator

    classes = {c.name: c for c in (MLPGenerator, LSTMGenerator, FCLSTMGenerator)}
    if name not in classes:
        raise KeyError(f"unknown generator {name!r}; choose one of {', '.join(classes)}")
    return classes[name]


def landmark_errors(gen: Generator, data: Dataset, test_ids: Seq[str], length: int) -> np.ndarray:
    """Per-landmark errors ``[N, T, L]`` (mm) of every test sequence generated at ``length`` frames."""
    seqs = [s for s in data.sequences if s.identity in set(test_ids)]
    gts = [s.resampled(length) for s in seqs]
    neutral = data.topology.landmarks(np.stack([data.neutral(s.identity) for s in seqs]))
    pred = np.empty((len(seqs), length) + neutral.shape[1:], dtype=np.float32)
    for fps in sorted({g.fps for g in gts}):
        sel = [i for i, g in enumerate(gts) if g.fps == fps]
        pred[sel] = gen.generate(neutral[sel], [seqs[i].label for i in sel], length, fps=fps)
    gt = np.stack([g.landmarks for g in gts])
    return np.linalg.norm(pred.astype(np.float64) - gt, axis=-1)


def evaluate(name: str, options: dict[str, Any], data: Dataset, budget: Budget, seed: int = 0,
             lengths: Seq[int] = LENGTHS, progress: bool = False) -> dict[str, Any]:
    """Train one variant and score it at each length: ``{"fit_s", "lengths": {T: (mean, std)}}``."""
    train_ids, test_ids = data.generator_split()
    gen = generator_class(name)(**options)
    t0 = time.perf_counter()
    gen.fit(data.subset(train_ids), budget, seed=seed, progress=progress)
    fit_s = time.perf_counter() - t0
    out = {}
    for length in lengths:
        err = landmark_errors(gen, data, test_ids, length)
        out[int(length)] = (float(err.mean()), float(err.std()))
    return {"fit_s": fit_s, "lengths": out, "final_loss": gen.train_report.get("final", {})}


def _fmt(row: dict[str, Any], lengths: Seq[int]) -> str:
    return " | ".join(f"{row['lengths'][t][0]:.3f} ± {row['lengths'][t][1]:.3f}" for t in lengths)


def load_dataset(name: str) -> Dataset:
    """``synthetic`` (falls back to the conformance kit's tiny dataset until it exists) or ``tiny``."""
    if name == "synthetic":
        try:
            from fc4dfs.datasets.synthetic import load_synthetic
        except ImportError:
            print("fc4dfs.datasets.synthetic is not available yet; using the conformance kit's tiny dataset")
        else:
            return load_synthetic()
    from fc4dfs.datasets.fixtures import tiny_dataset

    return tiny_dataset()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="synthetic", choices=["synthetic", "tiny"])
    ap.add_argument("--budget", default="quick", choices=["smoke", "quick", "paper"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    ap.add_argument("--only", choices=["table3", "alpha"], help="run only one of the two tables")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = load_dataset(args.dataset)
    budget = Budget(args.budget)
    jobs: list[tuple[str, str, dict[str, Any]]] = []
    if args.only in (None, "table3"):
        jobs += [(f"T3 {row}", name, opts) for row, name, opts in TABLE3_VARIANTS]
    if args.only in (None, "alpha"):
        jobs += [(f"T4 alpha={a:g}", "fc_lstm", {"temporal_alpha": a}) for a in ALPHA_SWEEP]
    print(f"{data!r}; budget {budget.name}; seeds {args.seeds}; per-landmark error (mm) at lengths {args.lengths}")
    results: dict[str, Any] = {}
    cache: dict[str, dict[str, Any]] = {}
    for row, name, opts in jobs:
        per_seed = []
        for seed in args.seeds:
            key = json.dumps([name, opts, seed], sort_keys=True)
            if key not in cache:
                cache[key] = evaluate(name, opts, data, budget, seed=seed, lengths=args.lengths)
            per_seed.append(cache[key])
        means = {t: float(np.mean([r["lengths"][t][0] for r in per_seed])) for t in args.lengths}
        stds = {t: float(np.mean([r["lengths"][t][1] for r in per_seed])) for t in args.lengths}
        spread = {t: float(np.std([r["lengths"][t][0] for r in per_seed])) for t in args.lengths}
        row_out = {"lengths": {t: (means[t], stds[t]) for t in args.lengths}, "seed_spread": spread,
                   "fit_s": float(np.mean([r["fit_s"] for r in per_seed])), "per_seed": per_seed}
        results[row] = row_out
        print(f"{row:<45} {_fmt(row_out, args.lengths)}   (seed spread "
              f"{'/'.join(f'{spread[t]:.3f}' for t in args.lengths)}; fit {row_out['fit_s']:.1f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
