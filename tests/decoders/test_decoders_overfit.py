"""Decoders learn: each neural decoder overfits one sequence to near-zero error."""
from __future__ import annotations

import pytest

from fc4dfs.plugins.contracts import Budget
from fc4dfs.zoo.decoders.miadnet import MIADNetDecoder
from fc4dfs.zoo.decoders.s2d import S2DDecoder
from decoders_fixtures import errors, one_sequence


@pytest.mark.parametrize("cls,options", [(S2DDecoder, {}), (MIADNetDecoder, {})], ids=["s2d", "miadnet"])
def test_decoder_overfits_one_sequence(cls, options):
    ds = one_sequence()
    dec = cls(**options)
    budget = Budget("smoke", {"epochs": 100, "max_frames": None, "batch_size": 32, "lr": 3e-3, "lr_decay": 0.98})
    report = dec.fit(ds, budget, seed=0, progress=False)
    err, motion = errors(dec, ds)
    first, final = report["first"]["l1"], report["final"]["l1"]
    assert final < first / 10, f"{cls.name}: training L1 {final:.4g} vs limit {first / 10:.4g} (ratio {final / (first / 10):.2f})"
    # predicting the neutral leaves 100 % of the motion; a learning decoder removes > 92 % of it
    assert err < 0.08 * motion, (f"{cls.name}: {err:.3f} mm left of {motion:.3f} mm of motion: limit "
                                 f"{0.08 * motion:.3f} mm, ratio {err / (0.08 * motion):.2f}")
