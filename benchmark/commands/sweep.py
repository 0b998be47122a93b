"""``fc4dfs-bench sweep``: one run per point of an option grid and per seed, on ``--executor``.

``--grid FLAG.KEY=V1,V2,...`` (repeatable; the grid is the product of all of them) where FLAG is one
of ``gen_opt``, ``dec_opt``, ``protocol_opt``, ``budget_opt``, ``dataset_opt``, ``pipeline_opt``; each
value is read like a ``--gen-opt`` value (JSON where it parses). A value that itself holds commas is written as a
JSON list of values: ``--grid protocol_opt.lengths=[[20,30],[40]]``.
Example: ``fc4dfs-bench sweep --gen fc_lstm --dec s2d --grid gen_opt.temporal_alpha=0,0.1,0.3 --seeds 0,1,2``.
"""
from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

from fc4dfs.benchmark.commands import HELP

#: grid prefix -> (RunConfig field, the flag it stands for)
GRID_FIELDS = {
    "gen_opt": ("generator_options", "--gen-opt"),
    "dec_opt": ("decoder_options", "--dec-opt"),
    "protocol_opt": ("protocol_options", "--protocol-opt"),
    "budget_opt": ("budget_overrides", "--budget-opt"),
    "dataset_opt": ("dataset_options", "--dataset-opt"),
    "pipeline_opt": ("pipeline_options", "--pipeline-opt"),
}


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    from fc4dfs.benchmark.commands.run import add_run_flags

    p = sub.add_parser("sweep", help=HELP["sweep"],
                       description="One run per point of the --grid product and per seed (finished runs are "
                                   "reused), on --executor; prints the primary metric of each point.")
    p.add_argument("--grid", action="append", required=True, metavar="FLAG.KEY=V1,V2,...",
                   help="one grid axis, repeatable; FLAG is gen_opt, dec_opt, protocol_opt, budget_opt, "
                        "dataset_opt or pipeline_opt, e.g. gen_opt.temporal_alpha=0,0.1,0.3")
    add_run_flags(p)
    return ["sweep"]


def parse_grid(axes: list[str]) -> list[tuple[str, str, list[Any]]]:
    """``["gen_opt.temporal_alpha=0,0.1"]`` -> ``[("generator_options", "temporal_alpha", [0, 0.1])]``.

    Raises UserError naming the ``--grid`` axis for a bad prefix, a missing key or value, a repeated
    axis or a repeated value.
    """
    from fc4dfs.benchmark.errors import UserError

    out: list[tuple[str, str, list[Any]]] = []
    seen: set[tuple[str, str]] = set()
    for axis in axes:
        name, eq, raw = axis.partition("=")
        prefix, dot, key = name.strip().partition(".")
        if prefix not in GRID_FIELDS or not dot or not key:
            raise UserError(f"--grid {axis!r}: expected FLAG.KEY=V1,V2,... with FLAG one of "
                            f"{', '.join(GRID_FIELDS)}")
        if not eq or not raw.strip():
            raise UserError(f"--grid {axis!r}: no values after '='")
        field = GRID_FIELDS[prefix][0]
        if (field, key) in seen:
            raise UserError(f"--grid {axis!r}: axis {name} is given twice")
        seen.add((field, key))
        values = _values(raw.strip())
        if any(not isinstance(v, (int, float, bool)) and v == "" for v in values):
            raise UserError(f"--grid {axis!r}: an empty value")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise UserError(f"--grid {axis!r}: repeats a value")
        out.append((field, key, values))
    return out


def _values(raw: str) -> list[Any]:
    if raw.startswith("["):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    from fc4dfs.benchmark.config import parse_options

    return [parse_options([f"v={part.strip()}"], "--grid")["v"] for part in raw.split(",")]


def grid_points(grid: list[tuple[str, str, list[Any]]]) -> list[dict[str, dict[str, Any]]]:
    """The product of the axes, each point as RunConfig option overlays: ``{field: {key: value}}``."""
    points = []
    for combo in itertools.product(*[values for _, _, values in grid]):
        point: dict[str, dict[str, Any]] = {}
        for (field, key, _), value in zip(grid, combo):
            point.setdefault(field, {})[key] = value
        points.append(point)
    return points


def run(args: argparse.Namespace) -> int:
    import sys

    from tabulate import tabulate

    from fc4dfs.benchmark.commands.run import execute_configs, run_config
    from fc4dfs.plugins.manager import registry

    grid = parse_grid(args.grid)
    points = grid_points(grid)
    seeds = args.seeds or [args.seed]
    configs, labels = [], []
    for point in points:
        label = " ".join(f"{k}={json.dumps(v)}" for opts in point.values() for k, v in opts.items())
        for seed in seeds:
            configs.append(run_config(args, seed, **point))
            labels.append(f"{label} s{seed}")
    outcomes = execute_configs(args, configs, "sweep", labels)
    primary = registry().load("protocol", args.protocol).primary_metric
    table, failed = [], 0
    for config, label in zip(configs, labels):
        out = outcomes[config.run_id]
        if not out.ok:
            failed += 1
            print(f"run {config.run_id} failed: {out.error}", file=sys.stderr)
            table.append([label, "", "failed", config.run_id])
            continue
        for row in out.result.record["rows"]:
            if row.get("reference"):
                continue
            value = row.get("metrics", {}).get(primary)
            table.append([label, row.get("setting", ""), "" if value is None else f"{value:.4g}", config.run_id])
    print(tabulate(table, headers=["point", "setting", primary, "run"], tablefmt="github"))
    return 1 if failed else 0
