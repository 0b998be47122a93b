"""Classifier-based metrics: ``ca`` (landmarks), ``ca_mesh`` (meshes) and ``fid``.

They need ``ctx.classifier(kind)`` — a trained classifier from
:class:`fc4dfs.benchmark.classifiers.ClassifierBank` (or anything with ``labels``,
``predict(sequences)``, ``features(sequences)`` and optionally ``test_accuracy``).
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence as Seq

import numpy as np

from fc4dfs.benchmark.stats import classification_report, frechet_distance
from fc4dfs.plugins.contracts import EvalContext, EvalItem, Metric, MetricValue
from fc4dfs.plugins.errors import ComponentError


def _classifier(metric: Metric, ctx: EvalContext, kind: str) -> Any:
    if ctx.classifier is None:
        raise ComponentError(f"metric {metric.name!r} needs a trained {kind} classifier: pass "
                             "EvalContext(classifier=ClassifierBank(...).get)")
    return ctx.classifier(kind)


def _true_ids(metric: Metric, items: Seq[EvalItem], labels: Seq[str]) -> np.ndarray:
    out = []
    for i, it in enumerate(items):
        if it.label not in labels:
            raise ComponentError(f"metric {metric.name!r}: item {i} has label {it.label!r}, unknown to the "
                                 f"classifier (labels: {', '.join(labels)})")
        out.append(list(labels).index(it.label))
    return np.asarray(out, dtype=np.int64)


class _ClassificationAccuracy(Metric):
    """Per item (summary): ``(true class, predicted class)``, indices into the classifier's labels."""

    unit: ClassVar[str] = "%"
    direction: ClassVar[str] = "higher"
    classifier_kind: ClassVar[str] = ""
    pred_attr: ClassVar[str] = ""

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[tuple[int, int]]:
        if not items:
            return []
        clf = _classifier(self, ctx, self.classifier_kind)
        seqs = []
        for i, it in enumerate(items):
            arr = getattr(it, self.pred_attr)
            if arr is None:
                raise ComponentError(f"metric {self.name!r}: item {i} ({it.identity}/{it.label}) has no "
                                     f"{self.pred_attr}")
            seqs.append(arr)
        true = _true_ids(self, items, clf.labels)
        pred = np.asarray(clf.predict(seqs), dtype=np.int64)
        return list(zip(true.tolist(), pred.tolist()))

    def finalize(self, summaries: Seq[tuple[int, int]], ctx: EvalContext) -> MetricValue:
        if not summaries:
            raise ComponentError(f"metric {self.name!r} got no items to score")
        clf = _classifier(self, ctx, self.classifier_kind)
        true = np.asarray([s[0] for s in summaries], dtype=np.int64)
        pred = np.asarray([s[1] for s in summaries], dtype=np.int64)
        per_item = 100.0 * (pred == true).astype(np.float64)
        report = classification_report(true, pred, list(clf.labels))
        report["gt_accuracy"] = getattr(clf, "test_accuracy", None)
        report["predicted"] = [clf.labels[k] for k in pred]
        return MetricValue(float(per_item.mean()), float(per_item.std()), per_item, report)


class LandmarkClassificationAccuracy(_ClassificationAccuracy):
    """CA: accuracy (%) of the landmark-sequence classifier on generated landmark sequences."""

    name: ClassVar[str] = "ca"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Expression classification accuracy of generated landmark sequences"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_landmarks", "classifier"})
    reference: ClassVar[bool] = True
    classifier_kind: ClassVar[str] = "landmarks"
    pred_attr: ClassVar[str] = "pred_landmarks"


class MeshClassificationAccuracy(_ClassificationAccuracy):
    """CA on meshes: accuracy (%) of the PCA + sequence-model classifier on decoded meshes."""

    name: ClassVar[str] = "ca_mesh"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("Expression classification accuracy of decoded mesh sequences "
                                  "(PCA + sequence model)")
    requires: ClassVar[frozenset[str]] = frozenset({"pred_mesh", "classifier"})
    reference: ClassVar[bool] = True
    classifier_kind: ClassVar[str] = "mesh"
    pred_attr: ClassVar[str] = "pred_mesh"


class FrechetDistance(Metric):
    """FID (Zou et al. §5.1): Fréchet distance between landmark-classifier features of the
    generated and the real test sequences.

    A distribution-level score, so ``per_item`` is None; ``details`` holds both feature sets
    (``pred_features``, ``gt_features``, aligned by item) so two methods can be compared with
    :func:`fc4dfs.benchmark.stats.paired_bootstrap` and :func:`fid_statistic`.
    """

    name: ClassVar[str] = "fid"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Frechet distance between classifier features of generated and real sequences"
    unit: ClassVar[str] = ""
    direction: ClassVar[str] = "lower"
    requires: ClassVar[frozenset[str]] = frozenset({"pred_landmarks", "classifier"})

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per item: its generated and its real sequence's features ``([D], [D])``."""
        clf = _classifier(self, ctx, "landmarks")
        for i, it in enumerate(items):
            if it.pred_landmarks is None:
                raise ComponentError(f"metric {self.name!r}: item {i} ({it.identity}/{it.label}) has no pred_landmarks")
        if not items:
            return []
        pred = np.asarray(clf.features([it.pred_landmarks for it in items]), dtype=np.float64)
        gt = np.asarray(clf.features([it.gt_landmarks for it in items]), dtype=np.float64)
        return list(zip(pred, gt))

    def finalize(self, summaries: Seq[tuple[np.ndarray, np.ndarray]], ctx: EvalContext) -> MetricValue:
        if len(summaries) < 2:
            raise ComponentError(f"metric {self.name!r} needs at least 2 items, got {len(summaries)}")
        pred = np.stack([s[0] for s in summaries])
        gt = np.stack([s[1] for s in summaries])
        value = frechet_distance(pred, gt)
        return MetricValue(value, None, None, {"pred_features": pred, "gt_features": gt,
                                               "feature_dim": int(pred.shape[1])})


def fid_statistic(pair_features: np.ndarray) -> float:
    """FID of stacked paired features ``[N, 2, D]`` (generated, real) — for ``paired_bootstrap``.

    For two methods A and B: ``paired_bootstrap(np.stack([fa, g], 1), np.stack([fb, g], 1),
    statistic=fid_statistic)``.
    """
    return frechet_distance(pair_features[:, 0], pair_features[:, 1])
