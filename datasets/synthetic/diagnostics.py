"""Probes that check a dataset still carries the papers' reasons for one method to beat another.

    python -m fc4dfs.datasets.synthetic.diagnostics [KEY=VALUE ...]   # options of load_synthetic

*Decoder probe* (FC-4DFS Table 2's ordering): closed-form stand-ins, 4-fold identity CV —
``shared_linear``, one ridge map from landmark displacements to mesh displacements for everyone
(what a decoder that ignores the neutral mesh can at best do linearly); ``per_identity``, the
same map fitted to the test identity's own other repetition (an upper bound for identity
awareness); ``pca_fit``, a PCA mesh model of the training frames fitted to the test landmarks.

*Generator probe* (FC-4DFS Table 3's reason): predict a test sequence's landmark displacements
as the mean of the training sequences of its label aligned by ``index`` (frame counting, no
notion of the length), by ``seconds`` (knows the frame rate, not the length) or by ``relative``
position in the sequence (knows both), at the native lengths and resampled to 20/25/30 frames.

All errors are mean per-vertex (per-landmark) Euclidean distances in mm.
"""
from __future__ import annotations

import sys

import numpy as np

from fc4dfs.datasets.base import Dataset, resample_frames


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    gram = x.T @ x
    reg = lam * np.trace(gram) / len(gram)
    return np.linalg.solve(gram + reg * np.eye(len(gram)), x.T @ y)


def _err(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.linalg.norm((pred - gt).reshape(len(gt), -1, 3), axis=-1).mean())


class _Frames:
    """Per-sequence landmark displacements, mesh displacements, meshes and landmarks."""

    def __init__(self, ds: Dataset, stride: int, vertex_stride: int) -> None:
        self.items = []
        keep = np.arange(0, ds.topology.num_vertices, vertex_stride)
        for s in ds.sequences:
            f = np.asarray(s.frames, dtype=np.float64)
            f = np.concatenate([f[:1], f[1::stride]])
            lm = ds.topology.landmarks(f)
            sub = f[:, keep]
            self.items.append((s.identity, s.meta.get("repetition"), (lm - lm[:1]).reshape(len(f), -1),
                               (sub - sub[:1]).reshape(len(f), -1), sub.reshape(len(f), -1),
                               lm.reshape(len(f), -1)))

    def stack(self, ids: list[str], rep: int | None = None):
        sel = [it for it in self.items if it[0] in ids and (rep is None or it[1] == rep)]
        if not sel:
            return None
        return tuple(np.concatenate([it[k] for it in sel]) for k in range(2, 6))


def decoder_probe(ds: Dataset, folds: int = 4, stride: int = 2, pca_components: int = 60,
                  vertex_stride: int = 1) -> dict[str, float]:
    """Mean errors of the decoder stand-ins over ``folds`` identity folds.

    ``stride`` keeps every n-th frame, ``vertex_stride`` every n-th vertex (errors are means,
    so sub-sampling only makes the probe cheaper).
    """
    data = _Frames(ds, stride, vertex_stride)
    rows = []
    for train, test in ds.folds(folds):
        x_tr, y_tr, m_tr, l_tr = data.stack(train)
        x_te, y_te, m_te, l_te = data.stack(test)
        w = _ridge(x_tr, y_tr, 1e-4)
        own = []
        for ident in test:
            a, b = data.stack([ident], rep=0), data.stack([ident], rep=1)
            if a is not None and b is not None:
                own.append(_err(b[0] @ _ridge(a[0], a[1], 1e-3), b[1]))
        # PCA mesh model of the training frames (through the small Gram matrix), fitted to landmarks
        sub = slice(None, None, max(1, len(m_tr) // 600))
        mu, lm_mu = m_tr.mean(0), l_tr.mean(0)
        centred, lm_centred = m_tr[sub] - mu, l_tr[sub] - lm_mu
        evals, evecs = np.linalg.eigh(centred @ centred.T)
        top = np.argsort(evals)[::-1][:pca_components]
        top = top[evals[top] > 1e-9 * evals.max()]
        proj = (evecs[:, top] / np.sqrt(evals[top])).T
        basis, lm_basis = proj @ centred, proj @ lm_centred  # orthonormal mesh modes, their landmarks
        coef = np.linalg.lstsq(lm_basis.T, (l_te - lm_mu).T, rcond=None)[0].T
        rows.append({"no_motion": _err(np.zeros_like(y_te), y_te), "shared_linear": _err(x_te @ w, y_te),
                     "per_identity": float(np.mean(own)) if own else float("nan"),
                     "pca_fit": _err(mu + coef @ basis, m_te)})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _aligned(d: np.ndarray, fps: float, length: int, out_fps: float, how: str) -> np.ndarray:
    if how == "relative":
        return resample_frames(d, length)
    if how == "index":
        src = np.minimum(np.arange(length), len(d) - 1).astype(np.float64)
    else:  # seconds
        src = np.clip(np.arange(length) / out_fps * fps, 0, len(d) - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, len(d) - 1)
    w = (src - lo)[:, None, None]
    return (1 - w) * d[lo] + w * d[hi]


def generator_probe(ds: Dataset, lengths: tuple = (None, 20, 25, 30)) -> dict[str, dict[str, float]]:
    """Mean landmark errors of the alignment stand-ins, per evaluation length (None = native)."""
    train_ids, test_ids = ds.generator_split()
    disp = {}
    for s in ds.sequences:
        lm = s.landmarks.astype(np.float64)
        disp[id(s)] = lm - lm[:1]
    train = [s for s in ds.sequences if s.identity in train_ids]
    out = {}
    for length in lengths:
        errs: dict[str, list[float]] = {"zero": [], "index": [], "seconds": [], "relative": []}
        for s in (q for q in ds.sequences if q.identity in test_ids):
            g = s if length is None else s.resampled(length)
            gt = g.landmarks.astype(np.float64)
            gt = gt - gt[:1]
            errs["zero"].append(float(np.linalg.norm(gt, axis=-1).mean()))
            for how in ("index", "seconds", "relative"):
                pred = np.mean([_aligned(disp[id(t)], t.fps, g.length, g.fps, how)
                                for t in train if t.label == s.label], axis=0)
                errs[how].append(float(np.linalg.norm(pred - gt, axis=-1).mean()))
        out["native" if length is None else str(length)] = {k: float(np.mean(v)) for k, v in errs.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    from fc4dfs.datasets.synthetic import load_synthetic

    p = argparse.ArgumentParser(prog="python -m fc4dfs.datasets.synthetic.diagnostics", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("options", nargs="*", metavar="KEY=VALUE", help="load_synthetic options (resolution=small default)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--stride", type=int, default=2, help="keep every n-th frame in the decoder probe")
    p.add_argument("--vertex-stride", type=int, default=1, help="keep every n-th vertex in the decoder probe")
    p.add_argument("--pca", type=int, default=60, help="PCA components of the PCA stand-in")
    p.add_argument("--lengths", default="native,20,25,30", help="generator probe lengths")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    opts: dict = {"resolution": "small", "progress": False}
    for item in args.options:
        key, sep, val = item.partition("=")
        if not sep:
            p.error(f"expected KEY=VALUE, got {item!r}")
        opts[key] = val
    ds = load_synthetic(**opts)
    lengths = tuple(None if x == "native" else int(x) for x in args.lengths.split(","))
    out = {"dataset": repr(ds), "fingerprint": ds.fingerprint,
           "decoder": decoder_probe(ds, args.folds, args.stride, args.pca, args.vertex_stride),
           "generator": generator_probe(ds, lengths)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['dataset']} fingerprint {out['fingerprint']}")
    print("decoder probe (mm):", {k: round(v, 3) for k, v in out["decoder"].items()})
    for length, row in out["generator"].items():
        print(f"generator probe, length {length} (mm):", {k: round(v, 3) for k, v in row.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
