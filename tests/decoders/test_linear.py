"""The Linear baseline of Zou et al. Table 5: the closed-form least-squares map."""
from __future__ import annotations

import numpy as np
import pytest

from fc4dfs.plugins.contracts import Budget, ComponentError
from fc4dfs.zoo.decoders.common import collect_frames
from fc4dfs.zoo.decoders.linear import RCOND, LinearDecoder, ridge_solve
from decoders_fixtures import errors, one_sequence
from limits import assert_below


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("rank_deficient", [False, True], ids=["full-rank", "rank-deficient"])
def test_ridge_solve_equals_numpy_least_squares(rank_deficient):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 9))
    if rank_deficient:
        x[:, 8] = x[:, 0] - x[:, 1]  # a landmark coordinate that is a combination of others
    y = x @ rng.normal(size=(9, 5)) + 0.1 * rng.normal(size=(60, 5))
    ref = np.linalg.lstsq(x, y, rcond=RCOND)[0]
    w = ridge_solve(x, y, 0.0, chunk=7)  # several chunks
    assert _rel(w, ref) < 1e-8, f"relative difference {_rel(w, ref):.2e} (limit 1e-8)"


def test_ridge_term_is_the_documented_one():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    ridge = 0.3
    r = ridge * np.trace(x.T @ x) / x.shape[1]
    ref = np.linalg.lstsq(np.vstack([x, np.sqrt(r) * np.eye(6)]), np.vstack([y, np.zeros((6, 3))]), rcond=None)[0]
    w = ridge_solve(x, y, ridge)
    assert _rel(w, ref) < 1e-8, f"relative difference {_rel(w, ref):.2e} (limit 1e-8)"


def test_decoder_fits_the_least_squares_map_of_its_training_frames():
    ds = one_sequence()
    dec = LinearDecoder(ridge=0.0)
    dec.fit(ds, Budget("smoke"), progress=False)
    fs = collect_frames(ds, LinearDecoder.budgets["smoke"]["max_frames"])
    n = len(fs.frames)
    x = (fs.landmarks - fs.neutral_landmarks[fs.ident]).reshape(n, -1).astype(np.float64)
    y = (fs.frames - fs.neutrals[fs.ident]).reshape(n, -1).astype(np.float64)
    ref = np.linalg.lstsq(x, y, rcond=RCOND)[0]
    pred, pred_ref = x @ dec.weights, x @ ref
    assert _rel(pred, pred_ref) < 1e-6, f"relative difference {_rel(pred, pred_ref):.2e} (limit 1e-6)"
    err, motion = errors(dec, ds)
    assert_below(err, motion, "linear (limit: the motion the neutral leaves)", " mm")


@pytest.mark.parametrize("ridge", [-1.0, "a lot"])
def test_bad_ridge_is_refused(ridge):
    with pytest.raises(ComponentError, match="ridge"):
        LinearDecoder(ridge=ridge)
