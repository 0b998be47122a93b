"""``length-ablation``: a generator at several lengths, decoded by one decoder (FC-4DFS Tables 3-4)."""
from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from fc4dfs.benchmark.protocols.common import Pooled, neutral_inputs, vertex_errors
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.plugins.contracts import EvalItem, Protocol

DEFAULT_LENGTHS = (20, 25, 30)


class LengthAblation(Protocol):
    """On the test identities, generate every test sequence at each length from its neutral landmarks and
    label, decode it with the identity's neutral mesh, and score it against the ground truth resampled to that
    length (same duration, so the frame rate follows the length)."""

    name: ClassVar[str] = "length-ablation"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Generators at lengths 20/25/30 through one decoder (FC-4DFS Tables 3-4)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator", "decoder"})
    primary_metric: ClassVar[str] = "e_mesh"

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        lengths = [int(x) for x in ctx.option("lengths", DEFAULT_LENGTHS)]
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen, gen_s = ctx.fit(ctx.make("generator"), train_ids, "generator")
        dec, dec_s = ctx.fit(ctx.make("decoder"), train_ids, "decoder")
        ectx = ctx.eval_context(train_ids)
        seqs = test_sequences(ds, test_ids)
        rows = []
        for length in lengths:
            t0 = time.perf_counter()
            pool, items = Pooled(), []
            for i, seq in enumerate(ctx.iterate(seqs, f"length {length}")):
                gt = seq.resampled(length)
                mesh, nlm = neutral_inputs(ds, seq)
                lm = gen.generate(nlm, [seq.label], length, fps=gt.fps, seed=ctx.seed * 100003 + i)
                pred = dec.decode(mesh, nlm, lm)[0]
                gt_frames = np.asarray(gt.frames, dtype=np.float32)
                pool.add(vertex_errors(pred, gt_frames))
                item = EvalItem(seq.identity, seq.label, gt.fps, gt.landmarks, pred_landmarks=lm[0],
                                gt_mesh=gt_frames, pred_mesh=pred)
                items.append(item)
                if length == lengths[-1]:
                    ctx.keep_example(item, f"{ctx.config.generator}+{ctx.config.decoder}")
            values = ctx.metrics(items, ectx, names=["e_lm", "e_mesh", "smoothness"], setting=f"length={length}")
            metrics = {k: float(v.value) for k, v in values.items()}
            metrics.update({"e_mesh": pool.mean, "e_mesh_std": pool.std})
            if "e_lm" in values and values["e_lm"].std is not None:
                metrics["e_lm_std"] = float(values["e_lm"].std)
            rows.append({"setting": f"length={length}", "n_items": len(items), "metrics": metrics,
                         "train_seconds": gen_s + dec_s, "eval_seconds": time.perf_counter() - t0})
        return rows
