"""Command-line options of the real-data adapters (light: no numpy at import, for the CLI's parser).

Each adapter module declares ``DATASET_CLI_OPTIONS`` (a list of :class:`CliOption`). A command
offers them with :func:`add_dataset_arguments` and turns the parsed flags into dataset options
with :func:`dataset_options_from_args`::

    from fc4dfs.datasets.realdata_cli import add_dataset_arguments, dataset_options_from_args
    add_dataset_arguments(parser)                              # --coma-root, --florence-root, ...
    options = dataset_options_from_args("coma", args)          # {"root": ..., "landmarks": ...}

Flags left unset fall back to the environment variables (read by the adapters themselves).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class CliOption:
    """One dataset option offered on the command line."""

    option: str  # the key passed to the dataset factory
    flag: str  # e.g. "--coma-root"
    help: str
    datasets: tuple[str, ...]  # the registered datasets that take it
    env: str | None = None  # environment variable read when the option is not given
    metavar: str | None = None
    kind: str = "value"  # "value" (string), "flag" (store_true), "ints" (comma-separated integers)


def all_cli_options() -> list[CliOption]:
    """The options of every built-in real-data adapter, one entry per flag (datasets merged)."""
    from fc4dfs.datasets.coma import DATASET_CLI_OPTIONS as coma
    from fc4dfs.datasets.florence4d import DATASET_CLI_OPTIONS as florence

    merged: dict[str, CliOption] = {}
    for opt in [*coma, *florence]:
        if opt.flag in merged:
            old = merged[opt.flag]
            if old.option != opt.option or old.kind != opt.kind:
                raise ValueError(f"flag {opt.flag} declared twice with different meanings")
            merged[opt.flag] = CliOption(old.option, old.flag, old.help,
                                         tuple(dict.fromkeys(old.datasets + opt.datasets)), old.env or opt.env,
                                         old.metavar, old.kind)
        else:
            merged[opt.flag] = opt
    return list(merged.values())


def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in str(text).replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def add_dataset_arguments(parser: argparse.ArgumentParser | Any,
                          options: Iterable[CliOption] | None = None) -> None:
    """Add the real-data flags to ``parser`` (in their own argument group)."""
    group = parser.add_argument_group("real datasets (CoMA, Aligned CoMA, Florence4D)")
    for opt in options if options is not None else all_cli_options():
        extra = f" (default: ${opt.env})" if opt.env else " (default: off)" if opt.kind == "flag" else \
            " (default: the dataset's own)"
        used = f" [{', '.join(opt.datasets)}]"
        dest = "ds_" + opt.flag.lstrip("-").replace("-", "_")
        if opt.kind == "flag":
            group.add_argument(opt.flag, dest=dest, action="store_true", default=None, help=opt.help + extra + used)
        else:
            group.add_argument(opt.flag, dest=dest, metavar=opt.metavar or "VALUE", default=None,
                               type=_ints if opt.kind == "ints" else str, help=opt.help + extra + used)


def dataset_options_from_args(dataset: str, args: argparse.Namespace,
                              options: Iterable[CliOption] | None = None) -> dict[str, Any]:
    """The dataset options for ``dataset`` from the flags that were given on the command line."""
    out: dict[str, Any] = {}
    for opt in options if options is not None else all_cli_options():
        value = getattr(args, "ds_" + opt.flag.lstrip("-").replace("-", "_"), None)
        if value is not None and dataset in opt.datasets:
            out[opt.option] = value
    return out
