"""``fc4dfs-bench evaluator train|show``: freeze the classifiers behind CA, CA (mesh) and FID in one file."""
from __future__ import annotations

import argparse
from pathlib import Path

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.commands.flags import add_dataset_flags, add_seed, add_threads, dataset_options


def add_parser(sub: argparse._SubParsersAction) -> list[str]:
    p = sub.add_parser("evaluator", help=HELP["evaluator"])
    esub = p.add_subparsers(dest="action", metavar="ACTION")
    esub.required = True
    t = esub.add_parser("train", help="train both classifiers on a dataset's generator-training identities and "
                                      "write them as one evaluator file",
                        description="Train the landmark and mesh expression classifiers (through the component "
                                    "store) on the dataset's generator-training identities and write them as one "
                                    "evaluator file; `run --evaluator FILE` scores with it. The file's content "
                                    "hash is printed and goes into every row it scores.")
    t.add_argument("--dataset", required=True, help="dataset name, e.g. coma or synthetic")
    t.add_argument("--budget", default="quick", choices=["smoke", "quick", "paper"],
                   help="classifier training budget (default: quick)")
    t.add_argument("--out", type=Path, required=True, help="evaluator file to write (.safetensors)")
    t.add_argument("--classifiers", default="default", choices=["default", "papers"],
                   help="classifier designs: default (BiLSTM + linear; PCA + LSTM + 3 FC) or papers (Zou et al.'s "
                        "one LSTM layer + linear; Potamias et al.'s PCA + concatenated frames + 3 FC) (default: default)")
    t.add_argument("--half", action="store_true",
                   help="store the weights as float16 (half the size; a different evaluator from the float32 one)")
    add_seed(t)
    add_dataset_flags(t)
    add_threads(t)
    s = esub.add_parser("show", help="print what an evaluator file was trained on and its content hash")
    s.add_argument("file", type=Path, help="evaluator file")
    return ["evaluator"]


def run(args: argparse.Namespace) -> int:
    import json

    from fc4dfs.benchmark.errors import UserError, writable_file
    from fc4dfs.benchmark.evaluators import read_header, content_hash

    if args.action == "show":
        if not args.file.is_file():
            raise UserError(f"evaluator file {args.file}: no such file")
        tensors, header = read_header(args.file)
        summary = {k: header.get(k) for k in ("dataset", "dataset_fingerprint", "budget", "seed", "train_ids")}
        summary["content_hash"] = content_hash(tensors)
        summary["classifiers"] = {k: {"name": v.get("name"), "version": v.get("version"),
                                      "test_accuracy": v.get("test_accuracy")}
                                  for k, v in header["classifiers"].items()}
        print(json.dumps(summary, indent=2))
        return 0
    from fc4dfs.benchmark.commands.run import setup_threads
    from fc4dfs.benchmark.runner import load_dataset
    from fc4dfs.plugins.manager import registry

    if args.out.suffix != ".safetensors":
        raise UserError(f"--out {args.out}: an evaluator file ends in .safetensors")
    writable_file(args.out, "--out")
    setup_threads(args.threads)
    reg = registry()
    reg.get("dataset", args.dataset)
    dataset = load_dataset(args.dataset, dataset_options(args), reg, progress=args.progress)
    path = train_evaluator(dataset, args.budget, args.seed, args.out, half=args.half, design=args.classifiers)
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def train_evaluator(dataset, budget: str, seed: int, out: Path, half: bool = False, design: str = "default") -> Path:
    """Train (or load from the component store) both classifiers and write them as one evaluator file."""
    import sys

    from fc4dfs.benchmark.classifiers import DESIGNS, ClassifierBank
    from fc4dfs.benchmark.evaluators import KINDS, save_evaluator

    train_ids = dataset.generator_split()[0]
    bank = ClassifierBank(dataset, train_ids, seed=seed, budget=budget, progress=False, use_shipped=False,
                          options=DESIGNS[design])
    classifiers = {kind: bank.get(kind) for kind in KINDS}
    digest = save_evaluator(out, classifiers, dataset, train_ids, budget, seed, half=half)
    for kind, clf in classifiers.items():
        print(f"{kind} classifier: held-out accuracy {clf.test_accuracy} %", file=sys.stderr)
    print(f"evaluator {digest} for {dataset.name} version {dataset.fingerprint}", file=sys.stderr)
    return out
