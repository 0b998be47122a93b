"""The MLP baseline generator: conformance kit and overfitting one sequence at two lengths."""
import pytest
from rnn_overfit import assert_overfits_one_sequence

from fc4dfs.plugins.errors import ComponentError
from fc4dfs.plugins.testing import check_generator
from fc4dfs.zoo.generators.mlp import MLPGenerator


def test_conformance():
    check_generator(MLPGenerator, {"hidden": 32, "temporal_alpha": 0.0})


def test_overfits_one_sequence_at_two_lengths():
    assert_overfits_one_sequence(MLPGenerator, {"hidden": 64}, [20], epochs=600)


def test_options_are_validated():
    with pytest.raises(ComponentError, match="depth"):
        MLPGenerator(depth=0)
    with pytest.raises(ComponentError, match="identity_dims"):
        MLPGenerator(identity_dims=-1)
