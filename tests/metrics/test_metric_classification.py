"""ca, ca_mesh and fid: known answers with a hand-made classifier, and conformance with a trained bank."""
from __future__ import annotations

import numpy as np
import pytest

from fc4dfs.benchmark.classifiers import ClassifierBank
from fc4dfs.benchmark.metrics.classification import (FrechetDistance, LandmarkClassificationAccuracy,
                                                     MeshClassificationAccuracy, fid_statistic)
from fc4dfs.benchmark.stats import frechet_distance, paired_bootstrap
from fc4dfs.plugins.contracts import EvalContext, EvalItem
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.plugins.testing import check_metric
from fc4dfs.datasets.fixtures import tiny_dataset
from limits import assert_above


class SignClassifier:
    """Label 0 when the last frame's mean x is negative, else 1; features = per-sequence mean xyz."""

    labels = ["down", "up"]
    test_accuracy = 87.5

    def predict(self, seqs):
        return np.asarray([int(np.asarray(s)[-1, :, 0].mean() > 0) for s in seqs])

    def features(self, seqs):
        return np.stack([np.asarray(s, np.float64).mean((0, 1)) for s in seqs])


def _ctx() -> EvalContext:
    ds = tiny_dataset()
    return EvalContext(ds.topology, SignClassifier.labels, classifier=lambda kind: SignClassifier())


def _seq(x: float, t: int = 4) -> np.ndarray:
    a = np.zeros((t, 3, 3), np.float32)
    a[-1, :, 0] = x
    return a


def test_accuracy_known_answer_and_per_class_report() -> None:
    items = [EvalItem("i", "up", 30, _seq(1), pred_landmarks=_seq(1)),
             EvalItem("i", "up", 30, _seq(1), pred_landmarks=_seq(-1, 6)),
             EvalItem("i", "down", 30, _seq(-1), pred_landmarks=_seq(-1)),
             EvalItem("i", "down", 30, _seq(-1), pred_landmarks=_seq(-2, 5))]
    v = LandmarkClassificationAccuracy().compute(items, _ctx())
    assert v.value == pytest.approx(75.0)
    np.testing.assert_allclose(v.per_item, [100, 0, 100, 100])
    assert v.details["confusion"] == [[2, 0], [1, 1]]
    assert v.details["per_class"]["up"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                            "support": 2}
    assert v.details["gt_accuracy"] == 87.5 and v.details["predicted"] == ["up", "down", "down", "down"]
    mesh_items = [EvalItem("i", it.label, 30, it.gt_landmarks, gt_mesh=it.gt_landmarks,
                           pred_mesh=it.pred_landmarks) for it in items]
    assert MeshClassificationAccuracy().compute(mesh_items, _ctx()).value == pytest.approx(75.0)
    with pytest.raises(ComponentError, match="unknown to the classifier"):
        LandmarkClassificationAccuracy().compute([EvalItem("i", "sideways", 30, _seq(1), pred_landmarks=_seq(1))],
                                                 _ctx())


def test_fid_known_answer() -> None:
    rng = np.random.default_rng(0)
    gts = [rng.normal(size=(5, 3, 3)).astype(np.float32) for _ in range(20)]
    shift = np.array([1.0, 2.0, 2.0], np.float32)  # moves every feature by a vector of norm 3
    items = [EvalItem("i", "up", 30, g, pred_landmarks=g + shift) for g in gts]
    v = FrechetDistance().compute(items, _ctx())
    assert v.value == pytest.approx(9.0, abs=1e-5)  # float32 inputs
    assert v.per_item is None
    same = [EvalItem("i", "up", 30, g, pred_landmarks=g) for g in gts]
    assert FrechetDistance().compute(same, _ctx()).value == pytest.approx(0.0, abs=1e-9)
    # paired comparison of two methods' FIDs through the stored features
    va = FrechetDistance().compute(same, _ctx()).details
    r = paired_bootstrap(np.stack([va["pred_features"], va["gt_features"]], 1),
                         np.stack([v.details["pred_features"], v.details["gt_features"]], 1),
                         n_boot=200, statistic=fid_statistic)
    assert r["diff"] == pytest.approx(-9.0, abs=1e-5) and r["significant"]
    assert fid_statistic(np.stack([v.details["pred_features"], v.details["gt_features"]], 1)) == \
        pytest.approx(frechet_distance(v.details["pred_features"], v.details["gt_features"]))


def test_classifier_metrics_need_a_classifier() -> None:
    ds = tiny_dataset()
    ctx = EvalContext(ds.topology, ds.labels)
    items = [EvalItem("i", "expr0", 30, _seq(1), pred_landmarks=_seq(1))]
    assert not LandmarkClassificationAccuracy().applicable(items, ctx)
    with pytest.raises(ComponentError, match="ClassifierBank"):
        LandmarkClassificationAccuracy().compute(items, ctx)


@pytest.fixture(scope="module")
def bank_ctx(tmp_path_factory) -> EvalContext:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FC4DFS_CACHE", str(tmp_path_factory.mktemp("clf")))
        ds = tiny_dataset()
        bank = ClassifierBank(ds, budget="smoke")
        bank.get("landmarks"), bank.get("mesh")
        yield EvalContext(ds.topology, ds.labels, classifier=bank.get)


@pytest.mark.parametrize("cls", [LandmarkClassificationAccuracy, MeshClassificationAccuracy, FrechetDistance])
def test_conformance_with_a_trained_bank(cls, bank_ctx: EvalContext) -> None:
    check_metric(cls, bank_ctx)


def test_ground_truth_scores_high_with_a_trained_bank(bank_ctx: EvalContext) -> None:
    ds = tiny_dataset()
    clf = bank_ctx.classifier("landmarks")
    _, test_ids = ds.generator_split()
    items = [EvalItem(s.identity, s.label, s.fps, s.landmarks, pred_landmarks=s.landmarks,
                      gt_mesh=np.asarray(s.frames), pred_mesh=np.asarray(s.frames))
             for s in ds.sequences if s.identity in test_ids]
    v = LandmarkClassificationAccuracy().compute(items, bank_ctx)
    assert v.value == pytest.approx(clf.test_accuracy)
    # real meshes of held-out identities: 70 % of the way from chance to perfect (80 % with 3 classes)
    chance = 100.0 / len(ds.labels)
    limit = chance + 0.7 * (100.0 - chance)
    acc = MeshClassificationAccuracy().compute(items, bank_ctx).value
    assert_above(acc, limit, "CA (mesh) of real meshes", " %", inclusive=True)
