"""Decoders learn: each neural decoder overfits one sequence to near-zero error."""
from __future__ import annotations

import pytest

from fc4dfs.plugins.contracts import Budget
from fc4dfs.zoo.decoders.miadnet import MIADNetDecoder
from fc4dfs.zoo.decoders.s2d import S2DDecoder
from decoders_fixtures import errors, one_sequence
from limits import assert_below


@pytest.mark.parametrize("cls,options", [(S2DDecoder, {}), (MIADNetDecoder, {})], ids=["s2d", "miadnet"])
def test_decoder_overfits_one_sequence(cls, options):
    ds = one_sequence()
    dec = cls(**options)
    budget = Budget("smoke", {"epochs": 100, "max_frames": None, "batch_size": 32, "lr": 3e-3, "lr_decay": 0.98})
    report = dec.fit(ds, budget, seed=0, progress=False)
    err, motion = errors(dec, ds)
    first, final = report["first"]["l1"], report["final"]["l1"]
    assert_below(final, first / 10, f"{cls.name}: final training L1 (limit 0.1 x the first)")
    # predicting the neutral leaves 100 % of the motion; a learning decoder removes > 92 % of it
    assert_below(err, 0.08 * motion, f"{cls.name}: error left of {motion:.3f} mm of motion (limit 0.08 x motion)",
                 " mm")
