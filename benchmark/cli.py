"""``fc4dfs-bench``: the command-line interface.

:func:`main` is the one boundary between the user and the code: a user-input error of any
command (a bad flag value, name, option, file or destination) becomes one line
``fc4dfs-bench: error: ...`` on stderr and exit code 2; any other exception is a bug and keeps
its traceback. The global flags ``--strict`` and ``--no-progress`` are accepted before or after
the sub-command.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from types import ModuleType
from typing import NoReturn, Sequence

from fc4dfs.benchmark.commands import COMMANDS
from fc4dfs.benchmark.errors import destination_error, one_line, user_error_types

PROG = "fc4dfs-bench"
#: ``0`` hides progress bars like ``--no-progress``: read once here, then passed down as ``progress``
PROGRESS_ENV = "FC4DFS_PROGRESS"

#: flags every (sub-)command accepts: flag -> help
GLOBAL_FLAGS = {
    "--strict": "treat any plugin that fails to load as an error (default: off; also FC4DFS_STRICT_PLUGINS=1)",
    "--no-progress": "hide progress bars (default: shown unless FC4DFS_PROGRESS=0)",
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit 2), like every other user error.

    Flags must be spelled in full (no prefix abbreviations: ``reproduce --seed 5`` would otherwise be
    read as ``--seeds 5``)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = f" (see {self.prog} --help)"
        self.exit(2, f"{PROG}: error: {one_line(Exception(message))}{hint}\n")


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a help text that states no default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) and "default" not in text:
            return f"{text} (default: {'on' if action.default else 'off'})"
        if ("default" in text or action.default in (None, argparse.SUPPRESS, False)
                or action.option_strings == [] or action.nargs == 0):
            return text
        return f"{text} (default: %(default)s)"


def _walk(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _walk(child)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command a command line names: its first word that is not a flag (global flags take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    """The parser of ``fc4dfs-bench`` and the module that runs each command.

    Without ``argv`` every command's parser is built. With ``argv`` only the module of the command
    it names is imported; every other command gets a bare parser with its help line, which is all
    the top-level help and the refusal of an unknown command need (so ``--help`` imports no command).
    """
    parser = Parser(prog=PROG, formatter_class=HelpFormatter,
                    description="Model zoo and benchmark suite for 4D facial expression synthesis.")
    for flag, help_ in GLOBAL_FLAGS.items():
        parser.add_argument(flag, action="store_true", help=help_)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = set(COMMANDS) if argv is None else {_command_in(argv)}
    handlers: dict[str, ModuleType] = {}
    for name, (module, help_) in COMMANDS.items():
        if name not in wanted:
            sub.add_parser(name, help=help_)
            continue
        try:
            mod = importlib.import_module(f"fc4dfs.benchmark.commands.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"fc4dfs.benchmark.commands.{module}":
                continue
            raise
        for cmd in mod.add_parser(sub) or []:
            handlers[cmd] = mod
    for child in list(_walk(parser))[1:]:
        if not issubclass(child.formatter_class, HelpFormatter):
            child.formatter_class = type(child.formatter_class.__name__, (HelpFormatter, child.formatter_class), {})
        for flag, help_ in GLOBAL_FLAGS.items():
            # SUPPRESS: a sub-command that did not see the flag keeps the value set before it
            child.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_)
    return parser, handlers


def _unknown_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> NoReturn:
    """Refuse ``extra`` with the (sub-)command that was parsing them, naming the closest flag it knows."""
    target = parser
    while True:  # descend to the sub-command that was chosen
        sub = next((a for a in target._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or name not in sub.choices:
            break
        target = sub.choices[name]
    flags = [o for a in target._actions for o in a.option_strings if o.startswith("--")]
    unknown = next((t.split("=", 1)[0] for t in extra if t.startswith("-")), None)
    close = difflib.get_close_matches(unknown, flags, n=1, cutoff=0.6) if unknown else []
    hint = f"; did you mean {close[0]}?" if close else ""
    target.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


def _lock_timeout(e: BaseException) -> bool:
    """A lock wait that timed out (filelock is imported only by the code that takes locks)."""
    filelock = sys.modules.get("filelock")
    return filelock is not None and isinstance(e, filelock.Timeout)


#: oneDNN products cached per process (oneDNN's default: 1,024). The row count of a product changes with
#: every batch and sequence length and each cached product keeps its buffers: a smoke run's peak RSS
#: grew by 120-190 MiB with the default; 64 holds a decoder's working set (the same decode speed).
ONEDNN_PRIMITIVE_CACHE = 64


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser(sys.argv[1:] if argv is None else argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            _unknown_arguments(parser, args, extra)
    except SystemExit as e:  # --help (0) or a refused command line (2, message already printed)
        return e.code if isinstance(e.code, int) else 2
    if args.strict:
        os.environ["FC4DFS_STRICT_PLUGINS"] = "1"
    args.progress = not args.no_progress and os.environ.get(PROGRESS_ENV, "1") != "0"
    # before any oneDNN primitive exists (oneDNN reads it once); an explicit setting wins
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_PRIMITIVE_CACHE))
    try:
        from fc4dfs.plugins.manager import registry

        registry()  # plugin failures are reported on every command (--strict: the first is the error)
        return int(handlers[args.command].run(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BaseException as e:
        if not (isinstance(e, user_error_types()) or destination_error(e) or _lock_timeout(e)):
            raise
        print(f"{PROG}: error: {one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
