"""MLP / LSTM / FC-LSTM generators: conformance kit, lengths and frame rates, overfitting, resume."""
import numpy as np
import pytest
import torch

from fc4dfs.datasets.base import Dataset
from fc4dfs.plugins.contracts import Budget, ComponentError
from fc4dfs.plugins.testing import check_generator, tiny_dataset
from fc4dfs.zoo.generators.fc_lstm import FCLSTMGenerator
from fc4dfs.zoo.generators.lstm import LSTMGenerator
from fc4dfs.zoo.generators.mlp import MLPGenerator

torch.set_num_threads(1)
SMALL = {"hidden": 32, "feat_dim": 32}


@pytest.mark.parametrize("cls, options", [
    (MLPGenerator, {"hidden": 32}),
    (MLPGenerator, {"hidden": 32, "temporal_alpha": 0.0}),
    (LSTMGenerator, SMALL),
    (LSTMGenerator, {**SMALL, "temporal_alpha": 0.0}),
    (FCLSTMGenerator, SMALL),
    (FCLSTMGenerator, {**SMALL, "temporal_alpha": 0.0}),
    (FCLSTMGenerator, {**SMALL, "freq": False}),
], ids=["mlp", "mlp-a0", "lstm", "lstm-a0", "fc_lstm", "fc_lstm-a0", "fc_lstm-nofreq"])
def test_conformance(cls, options):
    check_generator(cls, options)


def test_options_are_validated():
    with pytest.raises(ComponentError, match="freq"):
        LSTMGenerator(freq=True)  # the plain LSTM has no frequency switch: use fc_lstm
    with pytest.raises(ComponentError, match="temporal_alpha"):
        FCLSTMGenerator(temporal_alpha=-1)
    with pytest.raises(ComponentError, match="pe_dim"):
        FCLSTMGenerator(pe_dim=5)


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


def _one_sequence_dataset() -> Dataset:
    ds = tiny_dataset()
    seq = next(s for s in ds.sequences if s.kind == "n2e2n")
    return Dataset("one", ds.topology, [seq], ds.labels)


OVERFIT = {  # options, training lengths, epochs
    "mlp": ({"hidden": 64}, [20], 600),
    "fc_lstm": ({"hidden": 32, "feat_dim": 32}, [20], 400),
    # without frequency information the LSTM cannot tell lengths apart: one length only
    "lstm": ({"hidden": 32, "feat_dim": 32}, [], 300),
}


@pytest.mark.parametrize("cls", [MLPGenerator, LSTMGenerator, FCLSTMGenerator], ids=lambda c: c.name)
def test_overfits_one_sequence(cls):
    data = _one_sequence_dataset()
    seq = data.sequences[0]
    opts, lengths, epochs = OVERFIT[cls.name]
    g = cls(**opts, train_lengths=lengths)
    budget = Budget("smoke", {"epochs": epochs, "lr": 1e-2, "lr_final_ratio": 0.01, "one_length_per_epoch": False})
    g.fit(data, budget, seed=0, progress=False)
    motion = np.linalg.norm(seq.landmarks - seq.landmarks[0], axis=-1).mean()
    for length in [seq.length] + lengths:
        gt = seq.resampled(length)
        out = g.generate(gt.landmarks[:1], [seq.label], length, fps=gt.fps)
        err = np.linalg.norm(out[0] - gt.landmarks, axis=-1).mean()
        assert err < 0.05 * motion, f"{cls.name} at length {length}: {err:.3f} mm vs motion {motion:.3f} mm"


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
