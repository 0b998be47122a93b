"""MIADNet and its two Table-2 ablations pass the conformance kit (smoke budget)."""
from __future__ import annotations

import pytest

from fc4dfs.plugins.testing import check_decoder
from fc4dfs.zoo.decoders import SPECS


VARIANTS = [s for s in SPECS if s.target.endswith(":MIADNetDecoder")]


def test_all_three_miadnet_variants_are_registered():
    assert sorted(s.name for s in VARIANTS) == ["miadnet", "s2d+lm-n", "s2d+mesh-n"]


@pytest.mark.parametrize("spec", VARIANTS, ids=[s.name for s in VARIANTS])
def test_decoder_passes_conformance_kit(spec):
    report = check_decoder(spec.load(), dict(spec.options))
    assert not report.failed and len(report.passed) >= 14
