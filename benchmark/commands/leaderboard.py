"""``fc4dfs-bench leaderboard show|publish|rebuild``."""
from __future__ import annotations

import argparse
from pathlib import Path

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.defaults import DEFAULT_LEADERBOARD


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("leaderboard", help=HELP["leaderboard"])
    lsub = p.add_subparsers(dest="action", metavar="ACTION")
    lsub.required = True
    for action, help_ in (("show", "mean and 95 % CI over seeds, ranked per table of comparable rows"),
                          ("publish", "write markdown and a self-contained HTML page into leaderboard/"),
                          ("rebuild", "re-derive the CSV from the run records under a runs directory")):
        a = lsub.add_parser(action, help=help_.replace("%", "%%"), description=help_)  # help is %-formatted
        a.add_argument("--leaderboard", type=Path, default=DEFAULT_LEADERBOARD,
                       help=f"leaderboard CSV (default: {DEFAULT_LEADERBOARD})")
        if action != "rebuild":
            a.add_argument("--protocol", help="only this protocol (default: all)")
            a.add_argument("--dataset", help="only this dataset (default: all)")
            a.add_argument("--folds", action="store_true",
                           help="also list per-fold rows (default: only the pooled row over all folds)")
        if action == "publish":
            a.add_argument("--out", type=Path, default=Path("leaderboard"), help="output folder (default: leaderboard)")
            a.add_argument("--runs", type=Path, default=Path("runs"),
                           help="run directories, for example images (default: runs)")
        if action == "rebuild":
            a.add_argument("--runs", type=Path, default=Path("runs"),
                           help="runs directory whose records are read (default: runs)")
    return ["leaderboard"]


def run(args: argparse.Namespace) -> int:
    from fc4dfs.benchmark import publishing
    from fc4dfs.benchmark.errors import UserError, writable_dir, writable_file

    if args.leaderboard.is_dir():
        raise UserError(f"--leaderboard {args.leaderboard}: is a folder, expected a CSV file")
    if args.action == "publish":
        writable_dir(args.out, "--out")
    if args.action == "rebuild":
        writable_file(args.leaderboard, "--leaderboard")
    if args.action == "show":
        text = publishing.markdown(args.leaderboard, args.protocol, args.dataset, folds=args.folds)
        print(text)
    elif args.action == "publish":
        paths = publishing.publish(args.leaderboard, args.out, args.runs, args.protocol, args.dataset,
                                   folds=args.folds)
        for p in paths:
            print(p)
    else:
        n = publishing.rebuild(args.runs, args.leaderboard)
        print(f"{n} rows added to {args.leaderboard}")
    return 0
