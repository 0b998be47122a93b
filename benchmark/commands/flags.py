"""Flags shared by the sub-commands, validated while the command line is parsed (before any work).

A value outside its range is refused by argparse with one line naming the flag and the range.
Spellings (one per job): component options are ``--gen-opt``, ``--dec-opt``, ``--dataset-opt``
(``KEY=VALUE``, repeatable); the dataset flags (``--coma-root``, ``--florence-root``,
``--landmarks``, ``--skip-bad``, ...) are those the real-data adapters declare in ``DATASET_CLI_OPTIONS``.
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any, Callable

#: seeds are fed to numpy's legacy RandomState (``< 2**32``) as well as torch and default_rng
SEED_MAX = 2**32 - 1
#: frames one ``generate`` call may produce: one minute at 30 fps (PLY/OBJ write one file per frame)
LENGTH_MAX = 1800
#: frame rates accepted by ``--fps`` (exclusive of 0)
FPS_MAX = 1000.0

def int_range(lo: int, hi: int | None = None, what: str = "an integer") -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[lo, hi]`` (``hi=None``: no upper bound)."""
    rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} in {rng}, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is outside the allowed range {rng}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float, lo_open: bool = True) -> Callable[[str], float]:
    """An argparse ``type`` accepting finite floats in ``(lo, hi]`` (``[lo, hi]`` if not lo_open)."""
    rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {rng}, got {text!r}") from None
        if not math.isfinite(value) or value > hi or value < lo or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"{text} is outside the allowed range {rng}")
        return value

    parse.__name__ = "number"
    return parse


seed_type = int_range(0, SEED_MAX, "a seed")


def seeds_type(text: str) -> list[int]:
    """``0,1,2`` -> ``[0, 1, 2]``: distinct seeds, each in ``0..SEED_MAX``."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expects comma-separated integers in 0..{SEED_MAX}, got {text!r}")
    seeds = []
    for p in parts:
        try:
            seeds.append(seed_type(p))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expects comma-separated integers in 0..{SEED_MAX}, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeats a seed: {text!r}")
    return seeds


def device_type(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``, refused when this torch build or machine lacks it."""
    m = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text.strip())
    if m is None or (m.group(1) != "cuda" and m.group(2) is not None):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu":
        return "cpu"
    import torch

    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise argparse.ArgumentTypeError("mps is not available on this machine (use cpu)")
        return "mps"
    if torch.version.cuda is None:
        raise argparse.ArgumentTypeError(f"{text!r}: this torch build has no CUDA support (use cpu)")
    count = torch.cuda.device_count()
    if count == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device is visible (use cpu)")
    if index is not None and int(index) >= count:
        raise argparse.ArgumentTypeError(f"{text!r}: device index outside 0..{count - 1}")
    return text.strip()


def add_seed(p: argparse.ArgumentParser, seeds: bool = False, what: str = "training and sampling seed") -> None:
    """``--seed`` (and with ``seeds``, the conflicting ``--seeds``)."""
    if seeds:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--seed", type=seed_type, default=0, help=f"{what}, 0..{SEED_MAX} (default: 0)")
        g.add_argument("--seeds", type=seeds_type, default=None, metavar="LIST",
                       help="several seeds, comma-separated (e.g. 0,1,2): one run per seed; "
                            "not with --seed (default: only --seed)")
    else:
        p.add_argument("--seed", type=seed_type, default=0, help=f"{what}, 0..{SEED_MAX} (default: 0)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_type, default="cpu",
                   help="torch device: cpu, cuda, cuda:N or mps (default: cpu)")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int_range(1, 4096, "a thread count"), default=None,
                   help="torch CPU threads of each run, 1..4096; recorded in the run's config (default: all "
                        "cores with --executor local, --cpus-per-run with --executor ray)")


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """``--executor local|ray``, ``--ray-address``, ``--cpus-per-run``, ``--gpus-per-run``."""
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where runs execute: local (one after another in this process) or ray (one Ray task "
                        "per run; needs the distributed extra) (default: local)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this Ray cluster, e.g. auto or HEAD_IP:6379 (default: start a local Ray with "
                        "this machine's cores)")
    p.add_argument("--cpus-per-run", type=float_range(0.0, 4096.0), default=1.0, metavar="N",
                   help="CPUs each Ray task declares; also its torch threads unless --threads (default: 1)")
    p.add_argument("--gpus-per-run", type=float_range(0.0, 64.0, lo_open=False), default=0.0, metavar="N",
                   help="GPUs each Ray task declares (default: 0)")


def add_dataset_flags(p: argparse.ArgumentParser, deprecated: tuple[str, ...] = ()) -> None:
    """``--dataset-opt`` (plus ``deprecated`` alias spellings) and the flags the real-data adapters declare
    (``DATASET_CLI_OPTIONS``: ``--coma-root``, ``--florence-root``, ``--landmarks``, ``--skip-bad``, ...)."""
    from fc4dfs.datasets.realdata_cli import add_dataset_arguments

    note = f"; {'/'.join(deprecated)}: deprecated spellings" if deprecated else ""
    p.add_argument("--dataset-opt", *deprecated, dest="dataset_opt", action="append", metavar="KEY=VALUE",
                   help=f"dataset option, repeatable (default: the dataset's own{note})")
    add_dataset_arguments(p)


def add_component_opts(p: argparse.ArgumentParser) -> None:
    """``--gen-opt``, ``--dec-opt`` and ``--pipeline-opt``."""
    p.add_argument("--gen-opt", action="append", metavar="KEY=VALUE",
                   help="generator option, repeatable (default: the registered variant's)")
    p.add_argument("--dec-opt", action="append", metavar="KEY=VALUE",
                   help="decoder option, repeatable (default: the registered variant's)")
    p.add_argument("--pipeline-opt", action="append", metavar="KEY=VALUE",
                   help="direct pipeline option, repeatable (default: the registered variant's)")


def dataset_options(args: argparse.Namespace, dataset: str | None = None) -> dict[str, Any]:
    """The options of ``--dataset-opt`` and of the adapter flags that ``dataset`` (default ``args.dataset``,
    else ``args.name``) declares; folders and files given by flag are made absolute."""
    from fc4dfs.benchmark.config import parse_options
    from fc4dfs.datasets.realdata_cli import dataset_options_from_args

    opts = parse_options(getattr(args, "dataset_opt", None), "--dataset-opt")
    name = dataset or getattr(args, "dataset", None) or getattr(args, "name", None) or ""
    for key, val in dataset_options_from_args(name, args).items():
        opts[key] = str(Path(val).expanduser().resolve()) if key in ("root", "landmarks") else val
    return opts


def first_identity(dataset: Any) -> str:
    """The identity used when none is named (``generate``, ``dataset show``): the first test identity
    of the generator split, a face no generator has trained on."""
    return dataset.generator_split()[1][0]
