"""``decoder-cv``: a decoder on ground-truth landmarks, k-fold identity cross-validation (FC-4DFS Table 2)."""
from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from fc4dfs.benchmark.protocols.common import Pooled, neutral_inputs, vertex_errors
from fc4dfs.benchmark.runner import RunContext, metric_row, test_sequences
from fc4dfs.plugins.contracts import EvalItem, Protocol


class DecoderCV(Protocol):
    """Train on k-1 identity folds, decode every test frame from its ground-truth landmarks and its
    identity's neutral mesh; per-vertex Euclidean error (mm) per fold and pooled over folds."""

    name: ClassVar[str] = "decoder-cv"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Decoder alone on ground-truth landmarks, 4-fold identity CV (FC-4DFS Table 2)"
    needs: ClassVar[frozenset[str]] = frozenset({"decoder"})
    primary_metric: ClassVar[str] = "e_mesh"

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        k = int(ctx.option("folds", 4))
        only = ctx.option("only_folds", None)
        ds = ctx.dataset
        rows: list[dict[str, Any]] = []
        pooled = Pooled()
        dec_name = ctx.config.decoder
        for fold, (train_ids, test_ids) in enumerate(ds.folds(k)):
            if only is not None and fold not in only:
                continue
            decoder, train_s = ctx.fit(ctx.make("decoder"), train_ids, f"decoder-fold{fold}")
            t0 = time.perf_counter()
            fold_pool = Pooled()
            items: list[EvalItem] = []
            for seq in ctx.iterate(test_sequences(ds, test_ids), f"decode fold {fold}"):
                mesh, nlm = neutral_inputs(ds, seq)
                gt_lm = seq.landmarks
                pred = decoder.decode(mesh, nlm, gt_lm[None])[0]
                gt = np.asarray(seq.frames, dtype=np.float32)
                fold_pool.add(vertex_errors(pred, gt))
                item = EvalItem(seq.identity, seq.label, seq.fps, gt_lm, gt_mesh=gt, pred_mesh=pred)
                items.append(item)
                ctx.keep_example(item, dec_name)
            values = ctx.metrics(items, ctx.eval_context(train_ids), names=["e_mesh"], setting=f"fold{fold}")
            pooled.merge(fold_pool)
            metrics = metric_row(values) if values else {}
            metrics.update({"e_mesh": fold_pool.mean, "e_mesh_std": fold_pool.std})
            rows.append({"setting": f"fold{fold}", "fold": fold, "n_items": len(items), "metrics": metrics,
                         "train_seconds": train_s, "eval_seconds": time.perf_counter() - t0})
        rows.append({"setting": "pooled", "fold": "all", "n_items": sum(r["n_items"] for r in rows),
                     "metrics": {"e_mesh": pooled.mean, "e_mesh_std": pooled.std},
                     "train_seconds": sum(r["train_seconds"] for r in rows),
                     "eval_seconds": sum(r["eval_seconds"] for r in rows)})
        return rows
