"""Errors of the ground floor, shared by every layer above it (imports nothing from the package)."""
from __future__ import annotations

import difflib


class ComponentError(ValueError):
    """A user-facing error about a component's options, inputs or checkpoint."""


class CheckpointMismatchError(ComponentError):
    """A checkpoint was made for another component, version, topology or config."""


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered (raised in strict mode, or for collisions)."""


class UnknownComponentError(LookupError):
    """A name that no registered component has."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        avail = ", ".join(sorted(available)) or "none registered"
        super().__init__(f"unknown {kind} {name!r}.{hint} Available: {avail}")
        self.kind, self.name, self.available = kind, name, available
