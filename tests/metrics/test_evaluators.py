"""Frozen evaluators: one file with both classifiers, its content hash, where it applies, and the shipped one."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fc4dfs.benchmark import evaluators as ev
from fc4dfs.benchmark.classifiers import ClassifierBank
from fc4dfs.benchmark.cli import main
from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.runner import execute, load_dataset
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.plugins.contracts import Budget

CHEAP = Budget("smoke", overrides={"epochs": 2})


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FC4DFS_CACHE", str(tmp_path_factory.mktemp("evcache")))
        b = ClassifierBank(tiny_dataset(), budget=CHEAP)
        b.get("landmarks"), b.get("mesh")
        yield b


def _save(bank: ClassifierBank, path: Path, half: bool = False) -> str:
    return ev.save_evaluator(path, {k: bank.get(k) for k in ev.KINDS}, bank.dataset, bank.train_ids, "smoke", 0,
                             half=half)


def test_evaluator_file_scores_exactly_like_the_classifiers_it_froze(bank: ClassifierBank, tmp_path: Path):
    ds = bank.dataset
    digest = _save(bank, tmp_path / "e.safetensors")
    assert digest == bank.evaluator().content_hash  # the store's classifiers and their file: one hash
    frozen = ev.load_evaluator(tmp_path / "e.safetensors", ds)
    assert frozen.content_hash == digest and frozen.source.startswith("file ")
    seqs = ds.sequences[:6]
    for kind in ev.KINDS:
        np.testing.assert_array_equal(frozen.get(kind).logits(seqs), bank.get(kind).logits(seqs))
        assert frozen.get(kind).test_accuracy == bank.get(kind).test_accuracy
    # float16 storage: a different evaluator (hash), the same decisions on real data
    half = _save(bank, tmp_path / "h.safetensors", half=True)
    small = ev.load_evaluator(tmp_path / "h.safetensors", ds)
    assert half != digest and small.content_hash == half
    assert (tmp_path / "h.safetensors").stat().st_size < 0.6 * (tmp_path / "e.safetensors").stat().st_size
    np.testing.assert_array_equal(small.get("landmarks").predict(seqs), bank.get("landmarks").predict(seqs))


def test_evaluator_refuses_another_dataset_version_and_damage(bank: ClassifierBank, tmp_path: Path):
    path = tmp_path / "e.safetensors"
    _save(bank, path)
    other = tiny_dataset(seed=1)
    assert other.fingerprint != bank.dataset.fingerprint
    with pytest.raises(ev.EvaluatorError, match=f"trained for dataset 'tiny' version {bank.dataset.fingerprint}"):
        ev.load_evaluator(path, other)
    assert ev.shipped_file(other, bank.train_ids, 0) is None
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # a tensor byte
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ev.EvaluatorError, match="damaged"):
        ev.load_evaluator(bad, bank.dataset)
    plain = tmp_path / "plain.safetensors"
    bank.get("mesh").save(plain)
    with pytest.raises(ev.EvaluatorError, match="not an evaluator file"):
        ev.load_evaluator(plain, bank.dataset)


def test_bank_with_an_evaluator_file_trains_nothing(bank: ClassifierBank, tmp_path: Path, monkeypatch):
    path = tmp_path / "e.safetensors"
    digest = _save(bank, path)
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "empty"))
    frozen_bank = ClassifierBank(bank.dataset, budget="smoke", evaluator=path)
    for kind in ev.KINDS:
        frozen_bank.get(kind)
    assert frozen_bank.trained == [] and not (tmp_path / "empty" / "components").exists()
    assert frozen_bank.evaluator().content_hash == digest


@pytest.mark.e2e
def test_run_rows_carry_the_evaluator_hash_and_fid_size(bank: ClassifierBank, test_registry, tmp_path: Path,
                                                       capsys):
    pytest.importorskip("fc4dfs_nn_baseline", reason="example plugin not installed")
    path = tmp_path / "e.safetensors"
    digest = _save(bank, path)
    cfg = RunConfig(protocol="e2e", dataset="tiny", generator="nn_retrieval", decoder="sgd_linear", budget="smoke")
    res = execute(cfg, out_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv", progress=False,
                  reg=test_registry, render=False, evaluator=path, components_dir=tmp_path / "store")
    assert res.record["evaluator"]["hash"] == digest and res.record["evaluator"]["source"] == f"file {path}"
    rows = res.record["rows_flat"]
    assert {r["evaluator"] for r in rows} == {digest}
    main_row = rows[0]
    assert main_row["fid_features"] == f"{bank.get('landmarks').meta['n_classes']}-d x {main_row['n_items']}"
    assert not list((tmp_path / "store").glob("classifier-*"))  # no classifier trained
    assert main(["leaderboard", "show", "--leaderboard", str(tmp_path / "lb.csv")]) == 0
    shown = capsys.readouterr().out
    assert f"evaluator {digest}" in shown and "fid features" in shown


def test_evaluator_cli_trains_a_file_runs_load_and_bad_files_are_refused(test_registry, tmp_path: Path, capsys,
                                                                          monkeypatch):
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "tiny.safetensors"
    assert main(["evaluator", "train", "--dataset", "tiny", "--budget", "smoke", "--out", str(out),
                 "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluator", "show", str(out)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["dataset"] == "tiny" and shown["content_hash"] == ev.load_evaluator(out, tiny_dataset()).content_hash
    for bad, expect in ((tmp_path / "missing.safetensors", "no such file"), (tmp_path / "x.safetensors", "not a")):
        if "x." in bad.name:
            bad.write_text("not a checkpoint")
        code = main(["run", "--gen", "nn_retrieval", "--dec", "sgd_linear", "--dataset", "tiny", "--budget", "smoke",
                     "--evaluator", str(bad), "--out", str(tmp_path / "runs"), "--leaderboard",
                     str(tmp_path / "lb.csv")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and "Traceback" not in err and str(bad) in err, err
        assert expect in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "lb.csv").exists()


def test_shipped_synthetic_evaluator_applies_and_trains_nothing(tmp_path: Path, monkeypatch):
    """The package's synthetic evaluator is used for the default synthetic dataset, at any budget, and
    gives the same scores every time; another dataset version falls back to the store (and says so)."""
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("synthetic", {})
    train_ids = ds.generator_split()[0]
    path = ev.shipped_file(ds, train_ids, 0)
    assert path is not None, f"no shipped evaluator for synthetic version {ds.fingerprint}: run scripts/make_evaluators.sh"
    assert path.stat().st_size < 2e6
    said: list[str] = []
    scores = []
    for budget in ("smoke", "quick"):
        b = ClassifierBank(ds, train_ids, budget=budget, log=said.append)
        clf = b.get("landmarks")
        assert b.trained == [] and b.evaluator().source == "shipped synthetic.safetensors"
        scores.append(clf.logits(ds.sequences[:8]))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert said == [] and not (tmp_path / "cache" / "components").exists()
    other = ClassifierBank(tiny_dataset(), budget=CHEAP, log=said.append)
    assert other.frozen() is None and said == []  # no shipped file for "tiny": nothing to say


def test_shipped_synthetic_evaluator_scores_the_same_predictions_identically_on_every_load(tmp_path: Path,
                                                                                         monkeypatch):
    """CA, CA (mesh) and FID of one set of predictions, scored by two independent loads of the shipped
    evaluator (as two runs would), are equal bit for bit, whatever the runs' budgets."""
    from fc4dfs.benchmark.metrics.classification import (FrechetDistance, LandmarkClassificationAccuracy,
                                                         MeshClassificationAccuracy)
    from fc4dfs.plugins.contracts import EvalContext, EvalItem

    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("synthetic", {})
    train_ids, test_ids = ds.generator_split()
    rng = np.random.default_rng(0)
    items = []
    for s in [s for s in ds.sequences if s.identity in test_ids][::3]:
        frames = np.asarray(s.frames)
        noisy = frames + rng.normal(scale=0.5, size=frames.shape).astype(np.float32)  # imperfect "predictions"
        items.append(EvalItem(s.identity, s.label, s.fps, s.landmarks, pred_landmarks=ds.topology.landmarks(noisy),
                              gt_mesh=frames, pred_mesh=noisy))
    scores = []
    for budget in ("smoke", "quick"):
        bank = ClassifierBank(ds, train_ids, budget=budget)
        ctx = EvalContext(ds.topology, list(ds.labels), classifier=bank.get)
        scores.append([m().compute(items, ctx).value for m in (LandmarkClassificationAccuracy,
                                                                MeshClassificationAccuracy, FrechetDistance)])
        assert bank.trained == [] and bank.evaluator().source == "shipped synthetic.safetensors"
    assert scores[0] == scores[1], f"CA, CA (mesh), FID differ between two loads: {scores}"
    assert len(items) >= 20 and all(np.isfinite(scores[0]))


def test_the_papers_classifier_designs_train_take_any_length_and_freeze(tmp_path: Path, monkeypatch):
    from torch import nn

    from fc4dfs.benchmark.classifiers import DESIGNS

    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    ds = tiny_dataset()
    papers = ClassifierBank(ds, budget=CHEAP, options=DESIGNS["papers"])
    lm, mesh = papers.get("landmarks"), papers.get("mesh")
    assert lm.net.lstm.num_layers == 1 and not lm.net.lstm.bidirectional  # Zou et al.: one LSTM layer + linear
    assert [type(m) for m in lm.net.head] == [nn.Linear]
    assert sum(isinstance(m, nn.Linear) for m in mesh.net.head) == 3 and not hasattr(mesh.net, "lstm")  # Potamias
    seq = ds.sequences[0]
    for n in (5, seq.length, 2 * seq.length):  # any length: resampled to the concatenated frame count
        idx = np.linspace(0, seq.length - 1, n).round().astype(int)
        assert mesh.predict([np.asarray(seq.frames)[idx]]).shape == (1,)
    path = tmp_path / "papers.safetensors"
    ev.save_evaluator(path, {"landmarks": lm, "mesh": mesh}, ds, papers.train_ids, "smoke", 0)
    frozen = ev.load_evaluator(path, ds)
    np.testing.assert_array_equal(frozen.get("mesh").logits(ds.sequences[:4]), mesh.logits(ds.sequences[:4]))
    assert frozen.get("mesh").options["design"] == "potamias" and frozen.get("landmarks").options["bidirectional"] is False
    # the designs differ, so their evaluators do too, and the shipped file is never used for them
    default = ClassifierBank(ds, budget=CHEAP)
    assert default.key("mesh") != papers.key("mesh") and papers.use_shipped is False


@pytest.mark.e2e
def test_a_finished_run_asked_for_another_evaluator_is_scored_again(bank: ClassifierBank, test_registry,
                                                                     tmp_path: Path, capsys, monkeypatch):
    """`run --evaluator B` after the same run with evaluator A is not the reused record of A: it is another
    run (the evaluator's hash is in the run id) whose rows carry B's hash; the trained components come
    from the store; the same evaluator again reuses its record."""
    pytest.importorskip("fc4dfs_nn_baseline", reason="example plugin not installed")
    monkeypatch.setenv("FC4DFS_CACHE", str(tmp_path / "cache"))
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    hashes = {_save(bank, first), _save(bank, second, half=True)}
    assert len(hashes) == 2
    runs, board = tmp_path / "runs", tmp_path / "lb.csv"
    cmd = ["run", "--gen", "nn_retrieval", "--dec", "sgd_linear", "--dataset", "tiny", "--budget", "smoke",
           "--threads", "1", "--out", str(runs), "--leaderboard", str(board), "--evaluator"]
    assert main(cmd + [str(first)]) == 0
    trained = sorted(p.name for p in (tmp_path / "cache" / "components").rglob("*.safetensors"))
    assert trained
    assert main(cmd + [str(second)]) == 0
    assert main(cmd + [str(first)]) == 0
    out = capsys.readouterr()
    assert out.err.count("already finished; reusing its record") == 1, out.err  # only A's run, the third time
    records = [json.loads(p.read_text()) for p in sorted(runs.glob("*/record.json"))]
    assert sorted(r["evaluator"]["hash"] for r in records) == sorted(hashes)
    assert {r["config"]["evaluator"] for r in records} == hashes
    for rec in records:
        assert {row["evaluator"] for row in rec["rows_flat"]} == {rec["evaluator"]["hash"]}
    with board.open() as f:
        assert {r["evaluator"] for r in csv.DictReader(f)} == hashes
    assert sorted(p.name for p in (tmp_path / "cache" / "components").rglob("*.safetensors")) == trained  # no retraining
