"""``fc4dfs-bench check --gen NAME | --dec NAME | --dataset NAME | --metric NAME``: the conformance kit."""
from __future__ import annotations

import argparse
import sys

from fc4dfs.benchmark.commands import HELP


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("check", help=HELP["check"],
                       description="Train the component at the smoke budget on the kit's tiny dataset and check "
                                   "its contract (shapes, dtypes, units, determinism, save/load, topology refusal).")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gen", metavar="NAME", help="check this generator (default: none)")
    g.add_argument("--dec", metavar="NAME", help="check this decoder (default: none)")
    g.add_argument("--pipeline", metavar="NAME", help="check this direct pipeline (default: none)")
    g.add_argument("--dataset", metavar="NAME", help="check this dataset (default: none)")
    g.add_argument("--metric", metavar="NAME", help="check this metric (default: none)")
    # one spelling for every command: --gen-opt / --dec-opt / --dataset-opt (--opt: deprecated alias)
    for flag, what in (("--gen-opt", "generator"), ("--dec-opt", "decoder"), ("--pipeline-opt", "pipeline"),
                       ("--dataset-opt", "dataset")):
        p.add_argument(flag, action="append", metavar="KEY=VALUE",
                       help=f"{what} option, repeatable (default: the registered variant's)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="deprecated spelling of the --gen-opt/--dec-opt/--dataset-opt of the checked "
                        "component (default: none)")
    return ["check"]


def _options(args: argparse.Namespace) -> dict:
    """The checked component's options; an option flag of another kind is refused."""
    from fc4dfs.benchmark.config import parse_options
    from fc4dfs.benchmark.errors import UserError

    own = {"gen": "--gen-opt", "dec": "--dec-opt", "pipeline": "--pipeline-opt", "dataset": "--dataset-opt"}
    kind = next(k for k in ("gen", "dec", "pipeline", "dataset", "metric") if getattr(args, k))
    for k, flag in own.items():
        if k != kind and getattr(args, flag[2:].replace("-", "_")):
            raise UserError(f"{flag} does not apply to check --{kind}")
    if kind == "metric":
        if args.opt:
            raise UserError("--opt: metrics take no options in check")
        return {}
    flag = own[kind]
    if args.opt:
        print(f"warning: --opt is deprecated; use {flag}", file=sys.stderr)
    return {**parse_options(args.opt, "--opt"), **parse_options(getattr(args, flag[2:].replace("-", "_")), flag)}


def run(args: argparse.Namespace) -> int:
    from fc4dfs.plugins import testing
    from fc4dfs.plugins.manager import registry

    opts = _options(args)
    reg = registry()
    try:
        if args.gen or args.dec or args.pipeline:
            kind, name = (("generator", args.gen) if args.gen else ("decoder", args.dec) if args.dec
                          else ("pipeline", args.pipeline))
            spec = reg.get(kind, name)
            check = {"generator": testing.check_generator, "decoder": testing.check_decoder,
                     "pipeline": testing.check_pipeline}[kind]
            report = check(spec.load(), {**spec.options, **opts})
        elif args.dataset:
            from fc4dfs.benchmark.runner import load_dataset

            report = testing.check_dataset(load_dataset(args.dataset, opts, reg, progress=args.progress))
        else:
            metric = reg.load("metric", args.metric)
            ctx = None
            if "classifier" in metric.requires:
                from fc4dfs.benchmark.classifiers import ClassifierBank
                from fc4dfs.datasets.fixtures import tiny_dataset
                from fc4dfs.plugins.contracts import EvalContext

                ds = tiny_dataset()
                bank = ClassifierBank(ds, ds.generator_split()[0], budget="smoke")
                ctx = EvalContext(ds.topology, ds.labels, classifier=bank.get)
            report = testing.check_metric(metric, ctx)
    except testing.ConformanceError as e:
        print(e)
        return 1
    print(report.summary())
    for name in report.passed:
        print(f"  ok  {name}")
    return 0
