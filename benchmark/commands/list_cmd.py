"""``fc4dfs-bench list [generators|decoders|pipelines|datasets|metrics|protocols|plugins]``."""
from __future__ import annotations

import argparse

from fc4dfs.benchmark.commands import HELP

KIND_OF = {"generators": "generator", "decoders": "decoder", "pipelines": "pipeline", "datasets": "dataset", "metrics": "metric",
           "protocols": "protocol"}


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("list", help=HELP["list"],
                       description="List registered components (name, version, provider, description) "
                                   "or plugin distributions with any load failure.")
    p.add_argument("what", nargs="?", default="all", choices=["all", *KIND_OF, "plugins"])
    return ["list"]


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fc4dfs.plugins.manager import registry

    reg = registry()
    if args.what == "plugins":
        rows = [(p.distribution, p.version, p.entry_point, p.api_version or "-",
                 "ok" if p.ok else f"FAILED: {p.error}", len(p.components)) for p in reg.plugins]
        print(tabulate(rows, headers=["distribution", "version", "entry point", "api", "status", "components"]))
    else:
        kinds = [KIND_OF[args.what]] if args.what != "all" else list(KIND_OF.values())
        for kind in kinds:
            rows = [(s.name, s.version, s.provider, s.description) for s in reg.specs(kind)]
            print(f"{kind}s:")
            print(tabulate(rows, headers=["name", "version", "provider", "description"]) if rows else "  (none)")
            print()
    return 0
