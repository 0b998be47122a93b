"""Datasets: the data contracts (Topology, Sequence, Dataset), adapters and caches.

The contracts are imported on first use (PEP 562), so that finding a dataset module (as plugin
discovery does) does not import numpy.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Dataset", "Sequence", "Topology", "TopologyMismatchError", "resample_frames"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fc4dfs.datasets import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
