"""``fc4dfs-bench run``: train what needs training, evaluate, print the table, append to the leaderboard."""
from __future__ import annotations

import argparse
from pathlib import Path

from fc4dfs.benchmark.commands.flags import (add_component_opts, add_dataset_flags, add_device, add_seed,
                                             add_threads, dataset_options)
from fc4dfs.benchmark.defaults import DEFAULT_LEADERBOARD, DEFAULT_OUT

__all__ = ["add_common", "add_parser", "dataset_options", "run", "setup_threads"]


def add_common(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run`` and ``reproduce``."""
    p.add_argument("--dataset", default="synthetic", help="dataset name (default: synthetic)")
    p.add_argument("--budget", default="quick", choices=["smoke", "quick", "paper"],
                   help="training budget: smoke, quick or paper (default: quick)")
    add_device(p)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="runs directory (default: runs/)")
    p.add_argument("--leaderboard", type=Path, default=DEFAULT_LEADERBOARD,
                   help=f"leaderboard CSV (default: {DEFAULT_LEADERBOARD})")
    add_dataset_flags(p)
    p.add_argument("--budget-opt", action="append", metavar="KEY=VALUE",
                   help="override one hyper-parameter of the budget, e.g. epochs=5, repeatable (default: none)")
    p.add_argument("--retrain-classifier", action="store_true", help="retrain the cached expression classifiers")
    add_threads(p)


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("run", help="run one protocol for a generator/decoder on a dataset",
                       description="Train what needs training, evaluate, print the result table, append rows to "
                                   "the leaderboard and write the run directory (config, record, metrics, "
                                   "checkpoints, examples).")
    p.add_argument("--gen", help="generator name (default: none; the protocol says whether it needs one)")
    p.add_argument("--dec", help="decoder name (default: none; the protocol says whether it needs one)")
    p.add_argument("--pipeline", help="direct pipeline name, in place of --gen and --dec (neutral mesh + label "
                                      "-> meshes; protocol e2e) (default: none)")
    p.add_argument("--protocol", default="e2e", help="e2e, decoder-cv or length-ablation (default: e2e)")
    add_seed(p, seeds=True)
    add_component_opts(p)
    p.add_argument("--protocol-opt", action="append", metavar="KEY=VALUE",
                   help="protocol option, e.g. lengths=[20,25,30] or length=30, repeatable "
                        "(default: the protocol's)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    p.add_argument("--force", action="store_true", help="discard an existing run directory and start over")
    p.add_argument("--evaluator", type=Path, default=None, metavar="FILE",
                   help="evaluator file (`fc4dfs-bench evaluator train`) scoring CA, CA (mesh) and FID (default: "
                        "the one shipped for this dataset version, else classifiers trained through the store)")
    add_common(p)
    return ["run"]


def setup_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> int:
    from fc4dfs.datasets.storage import progress_enabled

    from fc4dfs.benchmark.config import RunConfig, parse_options
    from fc4dfs.benchmark.errors import UserError, writable_dir, writable_file
    from fc4dfs.benchmark.report import print_result
    from fc4dfs.benchmark.runner import execute

    writable_dir(args.out, "--out")
    writable_file(args.leaderboard, "--leaderboard")
    if args.evaluator is not None:
        from fc4dfs.benchmark.evaluators import read_header

        if not args.evaluator.is_file():
            raise UserError(f"--evaluator {args.evaluator}: no such file")
        read_header(args.evaluator)  # not an evaluator file: refused before any work
    setup_threads(args.threads)
    seeds = args.seeds or [args.seed]
    progress = progress_enabled()
    for seed in seeds:
        config = RunConfig(protocol=args.protocol, dataset=args.dataset, generator=args.gen, decoder=args.dec,
                           budget=args.budget, seed=seed, device=args.device,
                           generator_options=parse_options(args.gen_opt, "--gen-opt"),
                           decoder_options=parse_options(args.dec_opt, "--dec-opt"),
                           dataset_options=dataset_options(args),
                           protocol_options=parse_options(args.protocol_opt, "--protocol-opt"),
                           budget_overrides=parse_options(args.budget_opt, "--budget-opt"),
                           pipeline=args.pipeline,
                           pipeline_options=parse_options(args.pipeline_opt, "--pipeline-opt"))
        result = execute(config, out_dir=args.out, leaderboard=args.leaderboard, resume=args.resume,
                         force=args.force, progress=progress, retrain_classifier=args.retrain_classifier,
                         evaluator=args.evaluator)
        print_result(result)
    return 0
