"""Metric tests train tiny LSTMs: one torch thread is fastest (and fair to a shared CPU)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
