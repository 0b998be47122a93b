"""``fc4dfs-bench run``: train what needs training, evaluate, print the table, append to the leaderboard."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.commands.flags import (add_component_opts, add_dataset_flags, add_device, add_executor_flags,
                                             add_seed, add_threads, dataset_options)
from fc4dfs.benchmark.defaults import DEFAULT_LEADERBOARD, DEFAULT_OUT

__all__ = ["add_common", "add_parser", "add_run_flags", "dataset_options", "evaluator_hash", "execute_configs",
           "executor_for", "run", "run_config", "setup_threads"]


def add_common(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run``, ``sweep`` and ``reproduce``."""
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
    add_executor_flags(p)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of one run's configuration (``run`` and ``sweep``)."""
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


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("run", help=HELP["run"],
                       description="Train what needs training, evaluate, print the result table, append rows to "
                                   "the leaderboard and write the run directory (config, record, metrics, "
                                   "checkpoints, examples). With --seeds, one run per seed, on --executor.")
    add_run_flags(p)
    return ["run"]


def setup_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def run_config(args: argparse.Namespace, seed: int, **options: dict[str, Any]) -> Any:
    """The RunConfig of ``args`` at ``seed``; ``options`` (e.g. ``generator_options``) overlay the flags'."""
    from fc4dfs.benchmark.config import RunConfig, parse_options
    from fc4dfs.benchmark.executor import threads_for

    given = {"generator_options": parse_options(args.gen_opt, "--gen-opt"),
             "decoder_options": parse_options(args.dec_opt, "--dec-opt"),
             "dataset_options": dataset_options(args),
             "protocol_options": parse_options(args.protocol_opt, "--protocol-opt"),
             "budget_overrides": parse_options(args.budget_opt, "--budget-opt"),
             "pipeline_options": parse_options(args.pipeline_opt, "--pipeline-opt")}
    for key, extra in options.items():
        given[key] = {**given[key], **extra}
    return RunConfig(protocol=args.protocol, dataset=args.dataset, generator=args.gen, decoder=args.dec,
                     budget=args.budget, seed=seed, device=args.device, pipeline=args.pipeline,
                     threads=threads_for(args.executor, args.threads, args.cpus_per_run),
                     evaluator=evaluator_hash(args.evaluator), **given)


def evaluator_hash(path: Path | None) -> str | None:
    """The content hash of the ``--evaluator`` file (None without one); UserError naming the file when it
    is missing or not an evaluator file, before any work."""
    if path is None:
        return None
    from fc4dfs.benchmark.errors import UserError
    from fc4dfs.benchmark.evaluators import file_hash

    if not path.is_file():
        raise UserError(f"--evaluator {path}: no such file")
    return file_hash(path)


def executor_for(args: argparse.Namespace, stop_on_error: bool = False) -> Any:
    from fc4dfs.benchmark.executor import make_executor

    return make_executor(args.executor, args.ray_address, args.cpus_per_run, args.gpus_per_run,
                         stop_on_error=stop_on_error)


def execute_configs(args: argparse.Namespace, configs: list[Any], desc: str, labels: list[str] | None = None) -> dict:
    """Validate every config (bad input fails here, before any run), then execute them on ``--executor``.

    Returns the outcomes by run id. With the local executor a failing run stops the command as a
    single ``run`` always has; with Ray the other runs go on and failures are reported at the end.
    """
    from fc4dfs.benchmark.config import validate_options
    from fc4dfs.benchmark.errors import writable_dir, writable_file
    from fc4dfs.benchmark.executor import Job, Settings
    from fc4dfs.plugins.manager import registry

    writable_dir(args.out, "--out")
    writable_file(args.leaderboard, "--leaderboard")
    reg = registry()
    for config in configs:
        for kind in ("generator", "decoder", "pipeline", "dataset"):
            if getattr(config, kind):
                reg.get(kind, getattr(config, kind))
        validate_options(reg, config)
    setup_threads(args.threads)
    executor = executor_for(args, stop_on_error=True)
    progress = args.progress
    settings = Settings(args.out, args.leaderboard, resume=args.resume, force=args.force,
                        retrain_classifier=args.retrain_classifier, progress=progress,
                        quiet=len(configs) > 1 or args.executor != "local", evaluator=args.evaluator)
    jobs = [Job(c, (labels or [""] * len(configs))[i]) for i, c in enumerate(configs)]
    return executor.run(jobs, settings, desc=desc)


def run(args: argparse.Namespace) -> int:
    import sys

    from fc4dfs.benchmark.report import print_result

    configs = [run_config(args, seed) for seed in args.seeds or [args.seed]]
    outcomes = execute_configs(args, configs, "run")
    failed, rows = 0, []
    for config in configs:
        out = outcomes[config.run_id]
        if out.ok:
            print_result(out.result)
            rows += out.result.record.get("rows_flat", [])
        else:
            failed += 1
            print(f"run {config.run_id} failed: {out.error}", file=sys.stderr)
    if len(configs) > 1 and rows:
        from fc4dfs.benchmark import leaderboard as lb
        from fc4dfs.benchmark.publishing import frame_markdown

        print(f"\nover seeds {', '.join(str(c.seed) for c in configs)}:\n")
        print(frame_markdown(lb.frame_of(rows)))
    return 1 if failed else 0
