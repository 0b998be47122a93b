"""``fc4dfs-bench check --gen NAME | --dec NAME | --dataset NAME | --metric NAME``: the conformance kit."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("check", help="run the conformance kit on a registered component",
                       description="Train the component at the smoke budget on the kit's tiny dataset and check "
                                   "its contract (shapes, dtypes, units, determinism, save/load, topology refusal).")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gen", metavar="NAME")
    g.add_argument("--dec", metavar="NAME")
    g.add_argument("--dataset", metavar="NAME")
    g.add_argument("--metric", metavar="NAME")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="component option (repeatable)")
    return ["check"]


def run(args: argparse.Namespace) -> int:
    from fc4dfs.benchmark.config import parse_options
    from fc4dfs.plugins import testing
    from fc4dfs.plugins.manager import registry

    reg = registry()
    opts = parse_options(args.opt, "--opt")
    try:
        if args.gen or args.dec:
            kind, name = ("generator", args.gen) if args.gen else ("decoder", args.dec)
            spec = reg.get(kind, name)
            check = testing.check_generator if kind == "generator" else testing.check_decoder
            report = check(spec.load(), {**spec.options, **opts})
        elif args.dataset:
            report = testing.check_dataset(reg.load("dataset", args.dataset)(**opts))
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
