"""Statistics shared by metrics and protocols: paired bootstrap, Fréchet distance, per-class scores."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def paired_bootstrap(a: Any, b: Any, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
                     statistic: Callable[[np.ndarray], float] | None = None) -> dict[str, Any]:
    """Mean difference ``a - b`` over paired items with a seeded percentile bootstrap interval.

    ``a`` and ``b`` hold one entry per item (the same items, same order): two methods' per-item
    scores. Each bootstrap replicate resamples item indices with replacement and applies the
    same indices to both. ``statistic`` (default: the mean) maps a resampled array (first axis =
    items) to a scalar, so distribution-level scores such as the Fréchet distance can be
    compared too. ``significant`` is True when the ``ci`` interval excludes zero.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[:1] != b.shape[:1]:
        raise ValueError(f"paired_bootstrap needs the same items for both methods: a has "
                         f"{a.shape[0] if a.ndim else 0} items, b has {b.shape[0] if b.ndim else 0}")
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError("paired_bootstrap needs at least one paired item")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if statistic is None:
        if a.ndim != 1 or b.ndim != 1:
            raise ValueError(f"paired_bootstrap without a statistic needs 1-d per-item scores, got "
                             f"{a.shape} and {b.shape}")
        keep = ~(np.isnan(a) | np.isnan(b))
        a, b = a[keep], b[keep]
        if a.shape[0] == 0:
            raise ValueError("paired_bootstrap: every item is NaN in a or b")
    stat = statistic if statistic is not None else (lambda x: float(np.mean(x)))
    n = a.shape[0]
    diff = float(stat(a) - stat(b))
    rng = np.random.default_rng(seed)
    reps = np.empty(int(n_boot), dtype=np.float64)
    chunk = max(1, min(int(n_boot), 4_000_000 // n))
    for start in range(0, int(n_boot), chunk):
        idx = rng.integers(0, n, size=(min(chunk, int(n_boot) - start), n))
        if statistic is None:
            reps[start:start + len(idx)] = (a - b)[idx].mean(1)
        else:
            reps[start:start + len(idx)] = [stat(a[i]) - stat(b[i]) for i in idx]
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return {"diff": diff, "lo": float(lo), "hi": float(hi),
            "significant": bool(lo > 0.0 or hi < 0.0), "n": int(n), "n_boot": int(n_boot), "ci": ci}


def gaussian_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                              sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})``. The trace term is computed as
    ``sum(sqrt(eig(S1^{1/2} S2 S1^{1/2})))`` — a symmetric PSD matrix, so eigenvalues are real
    and clipped at zero; no complex square root of a non-symmetric product is needed.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"Fréchet distance: shapes differ: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {s1.shape} vs {s2.shape}")
    s1 = (s1 + s1.T) / 2.0
    s2 = (s2 + s2.T) / 2.0
    w1, v1 = np.linalg.eigh(s1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    middle = root1 @ s2 @ root1
    w = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(w, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets ``[N, D]`` and ``[M, D]``."""
    fa, fb = np.asarray(feat_a, np.float64), np.asarray(feat_b, np.float64)
    if fa.ndim != 2 or fb.ndim != 2 or fa.shape[1] != fb.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got {fa.shape} and {fb.shape}")
    if fa.shape[0] < 2 or fb.shape[0] < 2:
        raise ValueError(f"the Fréchet distance needs at least 2 samples per set, got {fa.shape[0]} "
                         f"and {fb.shape[0]}")
    return gaussian_frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))


def classification_report(true: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy (%), confusion matrix (rows = true) and per-class precision/recall/F1 (Potamias Table 3)."""
    true = np.asarray(true, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    c = len(labels)
    conf = np.zeros((c, c), dtype=np.int64)
    np.add.at(conf, (true, pred), 1)
    tp = np.diag(conf).astype(np.float64)
    support = conf.sum(1)
    predicted = conf.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=(precision + recall) > 0)
    present = support > 0
    per_class = {lab: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                       "support": int(support[k])} for k, lab in enumerate(labels)}
    return {"accuracy": float(100.0 * tp.sum() / max(1, len(true))),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "per_class": per_class, "confusion": conf.tolist(), "labels": list(labels)}
