"""``fc4dfs-bench``: the command-line interface."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from fc4dfs.benchmark.commands import COMMANDS
from fc4dfs.benchmark.errors import user_error_types


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="fc4dfs-bench",
        description="Model zoo and benchmark suite for 4D facial expression synthesis.")
    parser.add_argument("--strict", action="store_true",
                        help="treat any plugin that fails to load as an error (also FC4DFS_STRICT_PLUGINS=1)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    handlers: dict[str, object] = {}
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"fc4dfs.benchmark.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"fc4dfs.benchmark.commands.{name}":
                continue
            raise
        for cmd in mod.add_parser(sub) or []:
            handlers[cmd] = mod
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    if args.strict:
        os.environ["FC4DFS_STRICT_PLUGINS"] = "1"
    if args.no_progress:
        os.environ["FC4DFS_PROGRESS"] = "0"
    try:
        from fc4dfs.plugins.manager import registry

        registry()  # plugin failures are reported on every command (--strict: the first is the error)
        return int(handlers[args.command].run(args) or 0)
    except user_error_types() as e:
        msg = str(e).strip().strip("'\"")
        print(f"fc4dfs-bench: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fc4dfs-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
