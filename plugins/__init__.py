"""The plugin system: hookspecs, registry, entry-point discovery, contracts and conformance kit."""
from fc4dfs.plugins.contracts import (Budget, CheckpointMismatchError, Component, ComponentError,
                                      Decoder, EvalContext, EvalItem, Generator, Metric, MetricValue,
                                      Protocol)
from fc4dfs.plugins.hookspecs import PLUGIN_API_VERSION, hookimpl
from fc4dfs.plugins.manager import (PluginError, Registry, UnknownComponentError, discover, registry,
                                    set_registry)
from fc4dfs.plugins.spec import ComponentSpec

__all__ = [
    "Budget", "CheckpointMismatchError", "Component", "ComponentError", "ComponentSpec", "Decoder",
    "EvalContext", "EvalItem", "Generator", "Metric", "MetricValue", "PLUGIN_API_VERSION", "PluginError",
    "Protocol", "Registry", "UnknownComponentError", "discover", "hookimpl", "registry", "set_registry",
]
