"""A metric registered through the public plugin API, to test that protocols pick up new metrics.

``e_mesh_max``: the largest per-vertex Euclidean error (mm) of any vertex in any frame; per item
its own largest error; pooled over disjoint item sets as the largest of the parts'.
"""
from __future__ import annotations

from typing import ClassVar, Sequence as Seq

import numpy as np

from fc4dfs.plugins import ComponentSpec, hookimpl
from fc4dfs.plugins.contracts import EvalContext, EvalItem, Metric, MetricValue

fc4dfs_api_version = "2.0"


class MeshMaxError(Metric):
    name: ClassVar[str] = "e_mesh_max"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Largest per-vertex Euclidean error of decoded meshes (tests)"
    unit: ClassVar[str] = "mm"
    direction: ClassVar[str] = "lower"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_mesh"})

    def compute(self, items: Seq[EvalItem], ctx: EvalContext) -> MetricValue:
        per_item = np.array([np.linalg.norm(np.asarray(it.pred_mesh, np.float64) - it.gt_mesh, axis=-1).max()
                             for it in items])
        return MetricValue(float(per_item.max()), None, per_item)

    def pool(self, parts: Seq[MetricValue]) -> MetricValue:
        per_item = np.concatenate([p.per_item for p in parts])
        return MetricValue(float(per_item.max()), None, per_item)


@hookimpl
def fc4dfs_metrics() -> list[ComponentSpec]:
    return [ComponentSpec("metric", "e_mesh_max", "fc4dfs_test_metric:MeshMaxError", MeshMaxError.description)]
