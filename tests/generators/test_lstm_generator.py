"""The plain LSTM generator (FC-LSTM's code with the frequency information off)."""
import pytest
from rnn_overfit import assert_overfits_one_sequence

from fc4dfs.plugins.errors import ComponentError
from fc4dfs.plugins.testing import check_generator
from fc4dfs.zoo.generators.fc_lstm import FCLSTMNet
from fc4dfs.zoo.generators.lstm import LSTMGenerator

SMALL = {"hidden": 32, "feat_dim": 32}


def test_conformance():
    check_generator(LSTMGenerator, SMALL)


def test_is_fc_lstm_without_frequency_information():
    g = LSTMGenerator(**SMALL)
    net = g.build_model(num_landmarks=5, num_labels=2)
    assert isinstance(net, FCLSTMNet) and not net.freq and net.emb is None and net.cell.weight_freq is None
    with pytest.raises(ComponentError, match="freq"):
        LSTMGenerator(freq=True)  # no frequency switch here: that is fc_lstm


def test_overfits_one_sequence():
    # without frequency information it cannot tell lengths apart, so one length only
    assert_overfits_one_sequence(LSTMGenerator, SMALL, [], epochs=300)
