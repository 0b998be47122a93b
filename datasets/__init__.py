"""Datasets: the data contracts (Topology, Sequence, Dataset), adapters and caches."""
from fc4dfs.datasets.base import (Dataset, Sequence, Topology, TopologyMismatchError,
                                  resample_frames)

__all__ = ["Dataset", "Sequence", "Topology", "TopologyMismatchError", "resample_frames"]
