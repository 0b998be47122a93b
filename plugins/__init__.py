"""The plugin system: hookspecs, registry, entry-point discovery, contracts and conformance kit.

The names below are the plugin API (``from fc4dfs.plugins import ComponentSpec, Generator, hookimpl``).
They are imported on first use (PEP 562), so that importing a ground-floor module of this package
(``fc4dfs.plugins.errors``, ``.spec``, ``.checkpoint``) loads nothing from the floors above it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODULE_OF = {
    "Budget": "contracts", "Component": "contracts", "Decoder": "contracts", "EvalContext": "contracts",
    "EvalItem": "contracts", "Generator": "contracts", "Metric": "contracts", "MetricValue": "contracts",
    "Option": "contracts", "Pipeline": "contracts", "Protocol": "contracts", "ResultRow": "contracts",
    "CheckpointMismatchError": "errors", "ComponentError": "errors", "PluginError": "errors",
    "UnknownComponentError": "errors",
    "PLUGIN_API_VERSION": "hookspecs", "hookimpl": "hookspecs",
    "Registry": "manager", "discover": "manager", "registry": "manager", "set_registry": "manager",
    "ComponentSpec": "spec",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from fc4dfs.plugins.contracts import (Budget, Component, Decoder, EvalContext, EvalItem, Generator, Metric,
                                          MetricValue, Option, Pipeline, Protocol, ResultRow)
    from fc4dfs.plugins.errors import CheckpointMismatchError, ComponentError, PluginError, UnknownComponentError
    from fc4dfs.plugins.hookspecs import PLUGIN_API_VERSION, hookimpl
    from fc4dfs.plugins.manager import Registry, discover, registry, set_registry
    from fc4dfs.plugins.spec import ComponentSpec
