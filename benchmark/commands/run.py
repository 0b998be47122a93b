"""``fc4dfs-bench run``: train what needs training, evaluate, print the table, append to the leaderboard."""
from __future__ import annotations

import argparse
from pathlib import Path

from fc4dfs.benchmark.runner import DEFAULT_LEADERBOARD, DEFAULT_OUT

#: dataset flags shared by commands that load datasets: flag -> (dataset option, help)
DATASET_FLAGS = {
    "--coma-root": ("root", "folder of the CoMA download (coma, coma_aligned); also FC4DFS_COMA_ROOT"),
    "--florence-root": ("root", "folder of the Florence 4D download; also FC4DFS_FLORENCE4D_ROOT"),
    "--landmarks": ("landmarks", "FLAME landmark embedding (.pkl/.npz/.npy); also FC4DFS_FLAME_LANDMARKS"),
}


def add_common(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run`` and ``reproduce``."""
    p.add_argument("--dataset", default="synthetic", help="dataset name (default: synthetic)")
    p.add_argument("--budget", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="runs directory (default: runs/)")
    p.add_argument("--leaderboard", type=Path, default=DEFAULT_LEADERBOARD, help="leaderboard CSV")
    p.add_argument("--dataset-opt", action="append", metavar="KEY=VALUE", help="dataset option (repeatable)")
    p.add_argument("--budget-opt", action="append", metavar="KEY=VALUE",
                   help="override one hyper-parameter of the budget, e.g. epochs=5 (repeatable)")
    p.add_argument("--retrain-classifier", action="store_true", help="retrain the cached expression classifiers")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    for flag, (_, help_) in DATASET_FLAGS.items():
        p.add_argument(flag, default=None, help=help_)
    p.add_argument("--skip-bad", action="store_true", help="real datasets: skip unreadable PLY files (listed in the manifest)")


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("run", help="run one protocol for a generator/decoder on a dataset",
                       description="Train what needs training, evaluate, print the result table, append rows to "
                                   "the leaderboard and write the run directory (config, record, metrics, "
                                   "checkpoints, examples).")
    p.add_argument("--gen", help="generator name")
    p.add_argument("--dec", help="decoder name")
    p.add_argument("--protocol", default="e2e", help="e2e (default), decoder-cv, length-ablation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", help="several seeds, comma-separated (e.g. 0,1,2): one run per seed")
    p.add_argument("--gen-opt", action="append", metavar="KEY=VALUE", help="generator option (repeatable)")
    p.add_argument("--dec-opt", action="append", metavar="KEY=VALUE", help="decoder option (repeatable)")
    p.add_argument("--protocol-opt", action="append", metavar="KEY=VALUE",
                   help="protocol option, e.g. lengths=[20,25,30] or length=30 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    p.add_argument("--force", action="store_true", help="discard an existing run directory and start over")
    add_common(p)
    return ["run"]


def dataset_options(args: argparse.Namespace) -> dict:
    from fc4dfs.benchmark.config import parse_options

    opts = parse_options(args.dataset_opt, "--dataset-opt")
    for flag, (key, _) in DATASET_FLAGS.items():
        val = getattr(args, flag.lstrip("-").replace("-", "_"))
        if val is not None:
            opts[key] = str(Path(val).expanduser().resolve())
    if getattr(args, "skip_bad", False):
        opts["skip_bad"] = True
    return opts


def setup_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> int:
    import os

    from fc4dfs.benchmark.config import RunConfig, parse_options
    from fc4dfs.benchmark.errors import UserError
    from fc4dfs.benchmark.report import print_result
    from fc4dfs.benchmark.runner import execute

    setup_threads(args.threads)
    seeds = [args.seed]
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    progress = os.environ.get("FC4DFS_PROGRESS", "1") != "0"
    for seed in seeds:
        config = RunConfig(protocol=args.protocol, dataset=args.dataset, generator=args.gen, decoder=args.dec,
                           budget=args.budget, seed=seed, device=args.device,
                           generator_options=parse_options(args.gen_opt, "--gen-opt"),
                           decoder_options=parse_options(args.dec_opt, "--dec-opt"),
                           dataset_options=dataset_options(args),
                           protocol_options=parse_options(args.protocol_opt, "--protocol-opt"),
                           budget_overrides=parse_options(args.budget_opt, "--budget-opt"))
        result = execute(config, out_dir=args.out, leaderboard=args.leaderboard, resume=args.resume,
                         force=args.force, progress=progress, retrain_classifier=args.retrain_classifier)
        print_result(result)
    return 0
