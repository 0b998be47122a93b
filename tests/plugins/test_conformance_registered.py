"""Every registered component passes the conformance kit — so each new plugin is checked automatically."""
from __future__ import annotations

import pytest

from fc4dfs.plugins import testing
from fc4dfs.plugins.manager import discover

REG = discover(strict=True)
#: dataset options that keep each built-in dataset's check fast (real datasets run over written fixtures)
DATASET_OPTIONS = {"synthetic": {"resolution": "small", "identities": 8}}
REAL_DATASETS = {"coma", "coma_aligned", "florence4d"}


def _ids(kind):
    return [s.name for s in REG.specs(kind)]


@pytest.mark.parametrize("name", _ids("generator"))
def test_generator_conformance(name):
    spec = REG.get("generator", name)
    cls = spec.load()
    testing.check_generator(cls, {**cls.conformance_options, **spec.options})


@pytest.mark.parametrize("name", _ids("decoder"))
def test_decoder_conformance(name):
    spec = REG.get("decoder", name)
    cls = spec.load()
    testing.check_decoder(cls, {**cls.conformance_options, **spec.options})


@pytest.mark.parametrize("name", _ids("pipeline"))
def test_pipeline_conformance(name):
    spec = REG.get("pipeline", name)
    cls = spec.load()
    testing.check_pipeline(cls, {**cls.conformance_options, **spec.options})


@pytest.mark.parametrize("name", _ids("metric"))
def test_metric_conformance(name):
    metric = REG.load("metric", name)
    ctx = None
    if "classifier" in metric.requires:
        from fc4dfs.benchmark.classifiers import ClassifierBank
        from fc4dfs.datasets.fixtures import tiny_dataset
        from fc4dfs.plugins.contracts import EvalContext

        ds = tiny_dataset()
        bank = ClassifierBank(ds, ds.generator_split()[0], budget="smoke")
        ctx = EvalContext(ds.topology, ds.labels, classifier=bank.get)
    testing.check_metric(metric, ctx)


@pytest.mark.parametrize("name", _ids("dataset"))
def test_dataset_conformance(name, tmp_path):
    factory = REG.load("dataset", name)
    if name in REAL_DATASETS:
        from fc4dfs.datasets import fixtures

        writer = fixtures.write_florence4d_fixture if name == "florence4d" else fixtures.write_coma_fixture
        fx = writer(tmp_path / "data")
        ds = factory(root=str(fx.root), landmarks=str(fx.landmarks), cache_dir=str(tmp_path / "cache"),
                     progress=False)
    else:
        ds = factory(**DATASET_OPTIONS.get(name, {}))
    testing.check_dataset(ds)


@pytest.mark.parametrize("name", _ids("protocol"))
def test_protocol_declares_its_contract(name):
    cls = REG.load("protocol", name)
    assert cls.name == name and cls.description and cls.needs <= {"generator", "decoder"}
    assert getattr(cls, "primary_metric", None) in _ids("metric")
