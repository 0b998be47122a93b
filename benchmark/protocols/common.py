"""Pieces shared by the protocols: scoring items with every applicable metric, pooling, rows."""
from __future__ import annotations

from typing import Any, Callable, Sequence as Seq

import numpy as np

from fc4dfs.datasets.base import Sequence
from fc4dfs.datasets.storage import release_mapped
from fc4dfs.plugins.contracts import EvalContext, EvalItem, Metric, MetricValue, Option, ResultRow
from fc4dfs.plugins.errors import ComponentError

#: the longest sequence a protocol option may ask for (frames; 333 s at 30 fps)
MAX_LENGTH = 10_000
#: test items a streaming protocol holds (meshes included) before it scores them and drops them
EVAL_CHUNK = 8


def length_option(name: str, default: Any, help: str, many: bool = False) -> Option:
    """A sequence-length option (frames, 2 .. MAX_LENGTH), or a list of them with ``many``."""
    if many:
        return Option(name, list, default, help, low=2, high=MAX_LENGTH, item_type=int)
    return Option(name, int, default, help, low=2, high=MAX_LENGTH, nullable=True)


def _metrics(ctx: Any) -> list[tuple[str, Metric]]:
    return [(spec.name, spec.load()()) for spec in ctx.registry.specs("metric")]


class Scorer:
    """Every registered metric's score of a set of items handed over in chunks (streamed evaluation).

    :meth:`push` one item at a time (every ``chunk`` items, default :data:`EVAL_CHUNK`, are summarised
    and let go), or :meth:`add` a chunk: each chunk goes to every metric whose requirements it meets
    (:meth:`Metric.summarize`: small per-item summaries), so that the caller can drop the chunk's
    meshes; :meth:`result` finalises each metric that every chunk met on its summaries in item order
    (:meth:`Metric.finalize`). The scores equal scoring all items at once (:func:`score`) but for
    rounding in a classifier's batches; memory grows by the summaries only (per item: a few numbers,
    a [T] error curve, classifier outputs). With ``reference`` only the metrics declared
    ``reference`` (scored on the ground truth itself).
    """

    def __init__(self, ctx: Any, ectx: EvalContext, reference: bool = False, chunk: int | None = None) -> None:
        self.ectx = ectx
        self.chunk = int(chunk or EVAL_CHUNK)
        self._metrics = [(name, m) for name, m in _metrics(ctx) if m.reference or not reference]
        self._summaries: dict[str, list[Any]] = {name: [] for name, _ in self._metrics}
        #: metrics that a chunk did not meet: left out of the result, as when scored all at once
        self._dropped: set[str] = set()
        self._pending: list[EvalItem] = []
        self.n_items = 0

    def push(self, item: EvalItem) -> None:
        """The next item; the pending ones are summarised once there are ``chunk`` of them."""
        self._pending.append(item)
        if len(self._pending) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self.add(pending)

    def add(self, items: Seq[EvalItem]) -> None:
        """Summarise the next items (after any pushed ones) as one chunk with every metric it still applies
        to; an empty chunk changes nothing."""
        if self._pending:
            self._flush()
        if not items:
            return
        self.n_items += len(items)
        for name, metric in self._metrics:
            if name in self._dropped:
                continue
            if not metric.applicable(items, self.ectx):
                self._dropped.add(name)
                self._summaries[name] = []
                continue
            got = metric.summarize(items, self.ectx)
            if len(got) != len(items):
                raise ComponentError(f"metric {name!r}: summarize returned {len(got)} summaries for "
                                     f"{len(items)} items; it must return one per item")
            self._summaries[name].extend(got)
            # ground-truth meshes are views of the dataset's memory map: give back what the metric read
            release_mapped(*(it.gt_mesh for it in items if it.gt_mesh is not None))

    def result(self) -> dict[str, MetricValue]:
        """Each applicable metric's score of every item added, by name (in registration order). With no
        items, the metrics that apply to none (those that need only a classifier) raise their own error."""
        self._flush()
        return {name: metric.finalize(self._summaries[name], self.ectx) for name, metric in self._metrics
                if name not in self._dropped and (self.n_items or metric.applicable([], self.ectx))}


def score(ctx: Any, items: Seq[EvalItem], ectx: EvalContext, reference: bool = False) -> dict[str, MetricValue]:
    """Every registered metric whose requirements ``items`` and ``ectx`` meet, by name: a :class:`Scorer`
    given all ``items`` as one chunk.

    With ``reference`` only the metrics declared ``reference`` (scored on the ground truth itself).
    """
    scorer = Scorer(ctx, ectx, reference)
    scorer.add(items)
    return scorer.result()


def pool(ctx: Any, parts: Seq[dict[str, MetricValue]]) -> dict[str, MetricValue]:
    """The scores of the union of disjoint item sets, for every metric that every part has and that pools."""
    out: dict[str, MetricValue] = {}
    for name, metric in _metrics(ctx):
        if parts and all(name in p for p in parts):
            pooled = metric.pool([p[name] for p in parts])
            if pooled is not None:
                out[name] = pooled
    return out


def item_key(item: EvalItem) -> str:
    """An item's key in ``per_item.json`` (identity, label, frames): the same across runs."""
    return f"{item.identity}|{item.label}|{len(item.gt_landmarks)}"


def make_row(setting: str, keys: Seq[str], values: dict[str, MetricValue], **fields: Any) -> ResultRow:
    """A ResultRow with each value's mean, std and per-item values under the metric's name.

    Repeated item keys (two sequences of one identity, label and length, e.g. of two kinds) get ``#2``,
    ``#3``... in order, so that every item keeps its own per-item value.
    """
    seen: dict[str, int] = {}
    unique = []
    for k in keys:
        seen[k] = seen.get(k, 0) + 1
        unique.append(k if seen[k] == 1 else f"{k}#{seen[k]}")
    keys = unique
    metrics: dict[str, float] = {}
    per_item: dict[str, list[tuple[str, float]]] = {}
    for name, v in values.items():
        metrics[name] = float(v.value)
        if v.std is not None:
            metrics[f"{name}_std"] = float(v.std)
        if v.per_item is not None:
            per_item[name] = list(zip(keys, np.asarray(v.per_item, dtype=float).tolist()))
    return ResultRow(setting, len(keys), metrics, per_item=per_item, **fields)


def details(values: dict[str, MetricValue]) -> dict[str, Any]:
    return {k: v.details for k, v in values.items() if v.details}


def neutral_inputs(dataset, seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """The identity's neutral mesh [1, V, 3] and its landmarks [1, L, 3]."""
    mesh = dataset.neutral(seq.identity)[None]
    return mesh, dataset.topology.landmarks(mesh)


def generate_batched(ctx: Any, keys: Seq[tuple[int, float | None]], desc: str,
                     call: Callable[[list[int], int, float | None, int], np.ndarray]) -> list[np.ndarray]:
    """Generate for every test item with one generator call per group of items that share ``(length, fps)``.

    ``keys[i]`` is item i's ``(length, fps)``; ``call(indices, length, fps, seed)`` returns ``[len(indices),
    length, L, 3]``. Groups run in order of first appearance, each seeded ``ctx.seed * 100003 + first index``
    (a group of one item draws what a call per item draws). Batching changes which noise an item gets,
    not its distribution; it is what makes a fixed-length protocol (``length``) cost one sampling pass
    per setting instead of one per item (a guided DDPM pass: 1.5 CPU-s for one sequence, 0.25 CPU-s
    per sequence in a batch of 32). Returns item i's ``[length, L, 3]`` at position i.
    """
    groups: dict[tuple[int, float | None], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault((int(key[0]), key[1]), []).append(i)
    out: list[np.ndarray | None] = [None] * len(keys)
    for (length, fps), idx in ctx.iterate(list(groups.items()), desc):
        res = call(idx, length, fps, ctx.seed * 100003 + idx[0])
        for j, i in enumerate(idx):
            out[i] = res[j]
    return out  # type: ignore[return-value]
