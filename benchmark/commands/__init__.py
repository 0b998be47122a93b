"""CLI sub-commands. Each module defines ``add_parser(subparsers)`` and ``run(args) -> int``.

:data:`COMMANDS` names each command's module and its one-line help, so that the top-level parser
(``fc4dfs-bench --help``, a mistyped command) is built without importing any command module, and
a command line imports only the module of its own command. Modules here must still import
nothing heavy at module level (torch, numpy, models): ``fc4dfs-bench COMMAND --help`` stays fast.
"""
#: command -> (module in this package, one-line help shown by ``fc4dfs-bench --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("list_cmd", "list registered components or plugins"),
    "run": ("run", "run one protocol for a generator/decoder on a dataset"),
    "check": ("check", "run the conformance kit on a registered component"),
    "leaderboard": ("leaderboard", "show, publish or rebuild the leaderboard"),
    "reproduce": ("reproduce", "reproduce the papers' tables on a dataset and judge each claim"),
    "sweep": ("sweep", "run a protocol over a grid of options and seeds"),
    "dataset": ("dataset", "look at a dataset: render a PNG or print a summary"),
    "render": ("render", "render a run's examples: strips, error heatmaps, GIF/MP4 animations"),
    "generate": ("generate", "generate one expression sequence and export it (PLY, OBJ, NPZ, GLB, preview)"),
    "retarget": ("retarget", "transfer an expression sequence from one face to another (any topology)"),
    "evaluator": ("evaluator", "train or inspect a frozen evaluator (the CA / CA (mesh) / FID classifiers)"),
}
#: command -> its one-line help (the module passes it to ``add_parser``)
HELP: dict[str, str] = {name: help_ for name, (_, help_) in COMMANDS.items()}
