"""User-facing errors: the CLI prints these as one line (no traceback) and exits with code 2."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a wrong name, path, flag or file."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that means 'the user asked for something wrong'."""
    from fc4dfs.datasets.base import TopologyMismatchError
    from fc4dfs.plugins.checkpoint import CheckpointError
    from fc4dfs.plugins.errors import ComponentError
    from fc4dfs.plugins.errors import PluginError, UnknownComponentError

    return (UserError, ComponentError, UnknownComponentError, PluginError, TopologyMismatchError,
            CheckpointError, FileNotFoundError)
