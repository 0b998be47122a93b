"""FC-LSTM generator: conformance for each ablation setting, lengths and frame rates, overfitting, resume."""
import numpy as np
import pytest
from rnn_overfit import assert_overfits_one_sequence

from fc4dfs.plugins.contracts import Budget
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.plugins.testing import check_generator
from fc4dfs.datasets.fixtures import tiny_dataset
from fc4dfs.zoo.generators.fc_lstm import FCLSTMGenerator

SMALL = {"hidden": 32, "feat_dim": 32}


@pytest.mark.parametrize("options", [{}, {"temporal_alpha": 0.0}, {"freq": False, "temporal_alpha": 0.0}],
                         ids=["freq+temporal", "freq", "neither"])
def test_conformance(options):
    check_generator(FCLSTMGenerator, {**SMALL, **options})


def test_options_are_validated():
    with pytest.raises(ComponentError, match="temporal_alpha"):
        FCLSTMGenerator(temporal_alpha=-1)
    with pytest.raises(ComponentError, match="pe_dim"):
        FCLSTMGenerator(pe_dim=5)


def test_overfits_one_sequence_at_two_lengths():
    assert_overfits_one_sequence(FCLSTMGenerator, SMALL, [20], epochs=300)


@pytest.fixture(scope="module")
def trained_fc_lstm():
    ds = tiny_dataset()
    g = FCLSTMGenerator(**SMALL)
    g.fit(ds.subset(ds.generator_split()[0]), Budget("smoke"), seed=0, progress=False)
    return g, ds


@pytest.mark.parametrize("length, fps", [(2, 30.0), (5, 10.0), (20, 25.0), (61, 60.0), (120, 24.0)])
def test_any_length_and_frame_rate(trained_fc_lstm, length, fps):
    g, ds = trained_fc_lstm
    nlm = ds.topology.landmarks(np.stack([ds.neutral(i) for i in ds.identities[-2:]]))
    out = g.generate(nlm, ds.labels[:2], length, fps=fps)
    assert out.shape == (2, length, ds.topology.num_landmarks, 3) and out.dtype == np.float32
    assert np.array_equal(out[:, 0], nlm)
    assert np.isfinite(out).all()


def test_length_changes_the_sequence_and_fps_only_rescales_time(trained_fc_lstm):
    g, ds = trained_fc_lstm
    nlm = ds.topology.landmarks(ds.neutral(ds.identities[-1]))[None]
    lab = [ds.labels[0]]
    a = g.generate(nlm, lab, 20, fps=30.0)
    # Eq. 5 divides the time point by the sequence's duration: the frame rate cancels for a given length
    assert np.allclose(a, g.generate(nlm, lab, 20, fps=15.0), atol=1e-5)
    b = g.generate(nlm, lab, 30, fps=30.0)
    assert not np.allclose(a[:, 10], b[:, 10], atol=1e-3)
    with pytest.raises(ComponentError, match="fps"):
        g.generate(nlm, lab, 20, fps=0.0)


class _Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    from fc4dfs.zoo.generators import common
    from fc4dfs.zoo.training import TrainLoop

    class KilledAfter2(TrainLoop):
        def __init__(self, *a, **kw):
            super().__init__(*a, **{**kw, "save_every_s": 0.0})

        def run(self, epoch_fn):
            def fn(epoch, rng):
                if epoch == 2 and kill[0]:
                    raise _Killed
                return epoch_fn(epoch, rng)
            return super().run(fn)

    kill = [True]
    monkeypatch.setattr(common, "TrainLoop", KilledAfter2)
    ds = tiny_dataset()
    train = ds.subset(ds.generator_split()[0])
    budget = Budget("smoke", {"epochs": 4})
    with pytest.raises(_Killed):
        FCLSTMGenerator(**SMALL).fit(train, budget, seed=3, workdir=tmp_path, progress=False)
    kill[0] = False
    resumed = FCLSTMGenerator(**SMALL)
    report = resumed.fit(train, budget, seed=3, workdir=tmp_path, progress=False)
    assert report["resumed_from"] == 2
    full = FCLSTMGenerator(**SMALL)
    full.fit(train, budget, seed=3, progress=False)
    nlm = ds.topology.landmarks(ds.neutral(ds.identities[-1]))[None]
    assert np.allclose(resumed.generate(nlm, [ds.labels[1]], 15), full.generate(nlm, [ds.labels[1]], 15), atol=1e-5)
