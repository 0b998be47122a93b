"""The plain autoregressive LSTM baseline of FC-4DFS Table 3.

It is :class:`~fc4dfs.zoo.generators.fc_lstm.FCLSTMGenerator` with the frequency information
switched off: a feature network embeds the previous frame's landmarks and the label into x_t and
a standard LSTM cell (Eq. 1) produces the next frame; it sees no position or length information.
"""
from __future__ import annotations

from typing import Any, ClassVar

from fc4dfs.zoo.generators.fc_lstm import FCLSTMGenerator

_FREQ_ONLY = ("freq", "pe_dim", "freq_dim", "pe_base")


class LSTMGenerator(FCLSTMGenerator):
    """Autoregressive LSTM over landmark frames: FC-LSTM's code path with ``freq`` off."""

    name: ClassVar[str] = "lstm"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Autoregressive LSTM over landmark frames (FC-4DFS baseline)"
    defaults: ClassVar[dict[str, Any]] = {k: v for k, v in FCLSTMGenerator.defaults.items() if k not in _FREQ_ONLY}
