"""The hooks through which every component registers, built-in or external.

A plugin is a module exposed under the entry-point group ``fc4dfs``. It declares the API
version it was written for as a module attribute ``fc4dfs_api_version = "MAJOR.MINOR"`` and
implements any of the hooks below (``@hookimpl``, or any function named ``fc4dfs_*``), each
returning a list of :class:`ComponentSpec`; a ``fc4dfs_*`` function that is not one of these hooks
fails the plugin (pluggy's ``check_pending``). Specs name their class by import path, so listing
components imports nothing heavy.
"""
from __future__ import annotations

import pluggy

from fc4dfs.plugins.spec import ComponentSpec

PROJECT = "fc4dfs"
#: The plugin API of this release. A plugin is compatible when its MAJOR matches and its MINOR
#: is not newer than ours.
PLUGIN_API_VERSION = "2.1"
# 2.0: ComponentSpec takes no ``version``; a component's version is its class attribute alone.
# 2.1: the ``fc4dfs_pipelines`` hook (direct pipelines: neutral mesh + label -> mesh sequence).

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def fc4dfs_generators() -> list[ComponentSpec]:
    """Generators: neutral landmarks + label + length/fps -> landmark sequence."""


@hookspec
def fc4dfs_decoders() -> list[ComponentSpec]:
    """Decoders: neutral mesh + landmark sequence -> mesh sequence."""


@hookspec
def fc4dfs_pipelines() -> list[ComponentSpec]:
    """Direct pipelines: neutral mesh + label + length/fps [+ intensity, timing] -> mesh sequence."""


@hookspec
def fc4dfs_datasets() -> list[ComponentSpec]:
    """Datasets: a factory ``(**options) -> fc4dfs.datasets.Dataset``."""


@hookspec
def fc4dfs_metrics() -> list[ComponentSpec]:
    """Metrics: :class:`fc4dfs.plugins.contracts.Metric` subclasses."""


@hookspec
def fc4dfs_protocols() -> list[ComponentSpec]:
    """Protocols: :class:`fc4dfs.plugins.contracts.Protocol` subclasses."""


KIND_HOOKS = {
    "generator": "fc4dfs_generators",
    "decoder": "fc4dfs_decoders",
    "pipeline": "fc4dfs_pipelines",
    "dataset": "fc4dfs_datasets",
    "metric": "fc4dfs_metrics",
    "protocol": "fc4dfs_protocols",
}


def api_compatible(declared: str) -> bool:
    """Whether a plugin written for ``declared`` runs on :data:`PLUGIN_API_VERSION`."""
    try:
        major, minor = (int(x) for x in str(declared).split(".")[:2])
    except ValueError:
        return False
    our_major, our_minor = (int(x) for x in PLUGIN_API_VERSION.split("."))
    return major == our_major and minor <= our_minor
