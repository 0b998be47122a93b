"""``e2e``: generator + decoder on held-out identities (FC-4DFS Table 1, Zou et al. Table 1)."""
from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from fc4dfs.benchmark.runner import RunContext, metric_row, test_sequences
from fc4dfs.benchmark.protocols.common import neutral_inputs
from fc4dfs.plugins.contracts import EvalItem, Protocol


class EndToEnd(Protocol):
    """For each test sequence (identity, label, length T, fps): generate from its neutral landmarks, decode
    with its identity's neutral mesh, and score everything: E_lm, E_mesh, classification accuracy and FID
    under classifiers trained on the real training sequences, diversity and smoothness. A ``gt`` reference row
    scores the real test sequences under the same classifiers."""

    name: ClassVar[str] = "e2e"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Generator + decoder on held-out identities (FC-4DFS Table 1)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator", "decoder"})
    primary_metric: ClassVar[str] = "e_mesh"

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen, gen_s = ctx.fit(ctx.make("generator"), train_ids, "generator")
        dec, dec_s = ctx.fit(ctx.make("decoder"), train_ids, "decoder")
        fixed_length = ctx.option("length", None)
        n_samples = int(ctx.option("samples", 3)) if gen.stochastic else 0
        t0 = time.perf_counter()
        items: list[EvalItem] = []
        for i, seq in enumerate(ctx.iterate(test_sequences(ds, test_ids), "e2e")):
            gt = seq.resampled(int(fixed_length)) if fixed_length else seq
            mesh, nlm = neutral_inputs(ds, seq)
            seed = ctx.seed * 100003 + i
            # a stochastic generator draws the scored sample and the diversity samples in one batch
            out = gen.generate(np.repeat(nlm, 1 + n_samples, 0), [seq.label] * (1 + n_samples), gt.length,
                               fps=gt.fps, seed=seed)
            lm = out[:1]
            pred = dec.decode(mesh, nlm, lm)[0]
            samples = out if n_samples else None
            item = EvalItem(seq.identity, seq.label, gt.fps, gt.landmarks, pred_landmarks=lm[0],
                            gt_mesh=np.asarray(gt.frames, dtype=np.float32), pred_mesh=pred, samples=samples)
            items.append(item)
            ctx.keep_example(item, f"{ctx.config.generator}+{ctx.config.decoder}")
        ectx = ctx.eval_context(train_ids)
        values = ctx.metrics(items, ectx, setting="e2e")
        rows = [{"setting": "e2e" if not fixed_length else f"length={fixed_length}", "n_items": len(items),
                 "metrics": metric_row(values), "train_seconds": gen_s + dec_s,
                 "eval_seconds": time.perf_counter() - t0,
                 "details": {k: v.details for k, v in values.items() if v.details}}]
        gt_items = [EvalItem(it.identity, it.label, it.fps, it.gt_landmarks, pred_landmarks=it.gt_landmarks,
                             gt_mesh=it.gt_mesh, pred_mesh=it.gt_mesh) for it in items]
        gt_values = ctx.metrics(gt_items, ectx, names=["ca", "ca_mesh"], setting="gt")
        if gt_values:
            rows.append({"setting": "e2e" if not fixed_length else f"length={fixed_length}", "generator": "gt",
                         "generator_version": "", "generator_options": {}, "decoder": "gt",
                         "decoder_version": "", "decoder_options": {},
                         "n_items": len(gt_items), "metrics": metric_row(gt_values),
                         "details": {k: v.details for k, v in gt_values.items() if v.details}})
        return rows
