"""CLI sub-commands. Each module defines ``add_parser(subparsers)`` and ``run(args) -> int``.

Modules here must import nothing heavy at module level (torch, models): ``fc4dfs-bench --help``
and ``list`` stay fast.
"""
COMMANDS = ["list_cmd", "run", "check", "leaderboard", "reproduce", "sweep", "dataset", "render", "generate",
            "retarget", "evaluator"]
