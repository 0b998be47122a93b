"""``fc4dfs-bench reproduce --dataset D --budget B [--tables ...]``: the papers' tables with claim verdicts."""
from __future__ import annotations

import argparse
from pathlib import Path

from fc4dfs.benchmark.commands import HELP


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    from fc4dfs.benchmark.commands.flags import seeds_type
    from fc4dfs.benchmark.commands.run import add_common

    p = sub.add_parser("reproduce", help=HELP["reproduce"],
                       description="Run the tables of FC-4DFS (1-4), Zou et al. 2023 (Z1-Z5) and Potamias et al. "
                                   "2020 (P) with every registered component, resuming finished runs, then write "
                                   "leaderboard/<dataset>/ CSV and a markdown report with each claim's verdict.")
    add_common(p)
    p.add_argument("--seeds", type=seeds_type, default=[0], metavar="LIST",
                   help="comma-separated seeds (default: 0)")
    p.add_argument("--tables", default="1,2,3,4,Z1,Z2,Z3,Z4,Z5,P",
                   help="which tables, e.g. 2,3 or Z1,Z2,Z3,Z4,Z5 (1-4: FC-4DFS; Z1-Z5: Zou et al. 2023, label "
                        "control, text control, filling, geometry-adaptive generation, decoders; P: Potamias et "
                        "al.'s Table 2 and Fig. 5; default: all)")
    p.add_argument("--report-dir", type=Path, default=None, help="report folder (default: leaderboard/<dataset>/)")
    p.set_defaults(leaderboard=None)  # reproduce's rows go to REPORT_DIR/leaderboard.csv unless --leaderboard
    for action in p._actions:
        if action.dest == "leaderboard":
            action.help = "leaderboard CSV (default: REPORT_DIR/leaderboard.csv)"
    return ["reproduce"]


def run(args: argparse.Namespace) -> int:
    from fc4dfs.benchmark.commands.flags import dataset_options
    from fc4dfs.benchmark.commands.run import executor_for, setup_threads
    from fc4dfs.benchmark.executor import threads_for
    from fc4dfs.benchmark.errors import UserError, writable_dir, writable_file
    from fc4dfs.benchmark.reproduce import reproduce

    seeds = args.seeds
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    from fc4dfs.benchmark.reproduce import TABLES

    bad = set(tables) - set(TABLES)
    if bad:
        raise UserError(f"--tables takes {', '.join(TABLES)}; got {sorted(bad)}")
    from fc4dfs.plugins.manager import registry

    registry().get("dataset", args.dataset)
    report_dir = args.report_dir or Path("leaderboard") / args.dataset
    writable_dir(args.out, "--out")
    writable_dir(report_dir, "--report-dir")
    if args.leaderboard is not None:
        writable_file(args.leaderboard, "--leaderboard")
    executor = executor_for(args)
    threads = threads_for(args.executor, args.threads, args.cpus_per_run)
    setup_threads(args.threads)
    path = reproduce(args.dataset, args.budget, args.out, report_dir, seeds, device=args.device,
                     dataset_options=dataset_options(args), tables=tables,
                     progress=args.progress,
                     retrain_classifier=args.retrain_classifier, leaderboard=args.leaderboard,
                     executor=executor, threads=threads)
    print(path.read_text())
    print(f"report: {path}")
    return 0
