"""The built-in plugin: registers the suite's own components through the public hooks.

Each area keeps its own list of specs (``SPECS`` in its package ``__init__``), importing
nothing heavy, so ``fc4dfs-bench list`` stays fast.
"""
from __future__ import annotations

from fc4dfs.plugins.hookspecs import PLUGIN_API_VERSION, hookimpl
from fc4dfs.plugins.spec import ComponentSpec

fc4dfs_api_version = PLUGIN_API_VERSION


def _specs(module: str) -> list[ComponentSpec]:
    import importlib

    return list(getattr(importlib.import_module(module), "SPECS", []))


@hookimpl
def fc4dfs_generators() -> list[ComponentSpec]:
    return _specs("fc4dfs.zoo.generators")


@hookimpl
def fc4dfs_decoders() -> list[ComponentSpec]:
    return _specs("fc4dfs.zoo.decoders")


@hookimpl
def fc4dfs_pipelines() -> list[ComponentSpec]:
    return _specs("fc4dfs.zoo.pipelines")


@hookimpl
def fc4dfs_datasets() -> list[ComponentSpec]:
    return _specs("fc4dfs.datasets.registry")


@hookimpl
def fc4dfs_metrics() -> list[ComponentSpec]:
    return _specs("fc4dfs.benchmark.metrics")


@hookimpl
def fc4dfs_protocols() -> list[ComponentSpec]:
    return _specs("fc4dfs.benchmark.protocols")
