"""PCA, Neural3DMM and S2D pass the conformance kit (smoke budget)."""
from __future__ import annotations

import pytest

from fc4dfs.plugins.testing import check_decoder
from fc4dfs.zoo.decoders import SPECS


BASELINES = [s for s in SPECS if s.name in ("pca", "neural3dmm", "s2d")]


@pytest.mark.parametrize("spec", BASELINES, ids=[s.name for s in BASELINES])
def test_decoder_passes_conformance_kit(spec):
    report = check_decoder(spec.load(), dict(spec.options))
    assert not report.failed and len(report.passed) >= 14
