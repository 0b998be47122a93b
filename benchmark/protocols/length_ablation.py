"""``length-ablation``: a generator at several lengths, decoded by one decoder (FC-4DFS Tables 3-4)."""
from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from fc4dfs.benchmark.protocols.common import Scorer, details, item_key, length_option, make_row, neutral_inputs
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.plugins.contracts import EvalItem, Option, Protocol, ResultRow

DEFAULT_LENGTHS = [20, 25, 30]


class LengthAblation(Protocol):
    """On the test identities, generate every test sequence at each length from its neutral landmarks and
    label, decode it with the identity's neutral mesh, and score it against the ground truth resampled to that
    length (same duration, so the frame rate follows the length) with every applicable metric that needs no
    classifier (E_lm, E_mesh, smoothness, and any such metric a plugin adds)."""

    name: ClassVar[str] = "length-ablation"
    version: ClassVar[str] = "3"
    description: ClassVar[str] = "Generators at lengths 20/25/30 through one decoder (FC-4DFS Tables 3-4)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator", "decoder"})
    primary_metric: ClassVar[str] = "e_mesh"
    direction: ClassVar[str] = "lower"
    options: ClassVar[dict[str, Option]] = {
        "lengths": length_option("lengths", DEFAULT_LENGTHS, "sequence lengths (frames), one row each",
                                 many=True),
    }

    def planned_fits(self, ctx: RunContext) -> list[tuple[str, list[str]]]:
        train_ids = list(ctx.dataset.generator_split()[0])
        return [("generator", train_ids), ("decoder", train_ids)]

    def run(self, ctx: RunContext) -> list[ResultRow]:
        lengths = [int(x) for x in ctx.option("lengths")]
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen, gen_s = ctx.fit(ctx.make("generator"), train_ids, "generator")
        dec, dec_s = ctx.fit(ctx.make("decoder"), train_ids, "decoder")
        ectx = ctx.eval_context(train_ids, classifiers=False)
        seqs = test_sequences(ds, test_ids)
        rows = []
        for length in lengths:
            t0 = time.perf_counter()
            scorer = Scorer(ctx, ectx)  # streamed: every EVAL_CHUNK items are scored, then dropped
            keys = []
            for i, seq in enumerate(ctx.iterate(seqs, f"length {length}")):
                gt = seq.resampled(length)
                mesh, nlm = neutral_inputs(ds, seq)
                lm = gen.generate(nlm, [seq.label], length, fps=gt.fps, seed=ctx.seed * 100003 + i)
                pred = dec.decode(mesh, nlm, lm)[0]
                item = EvalItem(seq.identity, seq.label, gt.fps, gt.landmarks, pred_landmarks=lm[0],
                                gt_mesh=np.asarray(gt.frames, dtype=np.float32), pred_mesh=pred)
                keys.append(item_key(item))
                scorer.push(item)
                if length == lengths[-1]:
                    ctx.keep_example(item, f"{ctx.config.generator}+{ctx.config.decoder}")
            values = scorer.result()
            rows.append(make_row(f"length={length}", keys, values, length=length,
                                 train_seconds=gen_s + dec_s, eval_seconds=time.perf_counter() - t0,
                                 details=details(values)))
        return rows
