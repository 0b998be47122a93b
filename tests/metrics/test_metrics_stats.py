"""paired_bootstrap, the Fréchet distance and the classification report."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from fc4dfs.benchmark.stats import (classification_report, frechet_distance, gaussian_frechet_distance,
                                    paired_bootstrap)


def _reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("dim", [3, 12, 32])
def test_frechet_matches_reference_on_random_features(dim: int) -> None:
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(200, dim)) @ rng.normal(size=(dim, dim))
    b = rng.normal(loc=0.5, size=(150, dim)) @ rng.normal(size=(dim, dim)) + 1.0
    ref = _reference_fid(a, b)
    assert frechet_distance(a, b) == pytest.approx(ref, abs=1e-6, rel=1e-9)


def test_frechet_known_values() -> None:
    # identical sets -> 0; two 1-d Gaussians: (m1-m2)^2 + (s1-s2)^2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert gaussian_frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)
    # a shift by a constant vector adds its squared norm only
    assert frechet_distance(x, x + np.array([3.0, 0, 4.0, 0])) == pytest.approx(25.0, abs=1e-9)


def test_frechet_stays_real_on_singular_covariances() -> None:
    rng = np.random.default_rng(1)
    a = np.repeat(rng.normal(size=(50, 1)), 5, axis=1)  # rank 1 covariance
    b = rng.normal(size=(50, 5))
    v = frechet_distance(a, b)
    assert np.isfinite(v) and v >= 0
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], b)


def test_paired_bootstrap_detects_a_real_difference_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(10, 3, size=60)  # large per-item spread, small consistent gap
    a, b = base + 0.5 + rng.normal(0, 0.1, 60), base
    r = paired_bootstrap(a, b, n_boot=1000, seed=3)
    assert r["diff"] == pytest.approx(float(np.mean(a - b)))
    assert r["lo"] < r["diff"] < r["hi"] and r["lo"] > 0 and r["significant"]
    assert paired_bootstrap(a, b, n_boot=1000, seed=3) == r
    same = paired_bootstrap(base + rng.normal(0, 0.1, 60), base, n_boot=1000, seed=3)
    assert same["lo"] < 0 < same["hi"] and not same["significant"]


def test_paired_bootstrap_with_a_statistic_and_bad_input() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(size=(80, 3))
    fa, fb = g + rng.normal(0, 0.1, g.shape), g + 2.0
    r = paired_bootstrap(np.stack([fa, g], 1), np.stack([fb, g], 1), n_boot=200,
                         statistic=lambda x: frechet_distance(x[:, 0], x[:, 1]))
    assert r["diff"] < 0 and r["significant"]
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="ci"):
        paired_bootstrap([1.0, 2.0], [1.0, 2.0], ci=1.5)


def test_classification_report_by_hand() -> None:
    true = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    r = classification_report(true, pred, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(100 * 4 / 6)
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                                   "support": 2}
    assert r["per_class"]["a"]["precision"] == 0.5 and r["per_class"]["c"]["recall"] == 0.5
