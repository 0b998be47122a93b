"""``geometry-adaptive``: label-guided generation from held-out faces (Zou et al. §5.4, Alg. 4, Table 4)."""
from __future__ import annotations

import time
from typing import ClassVar

from fc4dfs.benchmark.protocols.common import details, item_key, length_option, make_row, neutral_inputs, score
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.plugins.contracts import EvalItem, Option, Protocol, ResultRow


class GeometryAdaptive(Protocol):
    """For each test sequence of a held-out identity, generate its label's expression from that face's
    neutral landmarks (the generator's ``generate``: Alg. 4 for ``ddpm``, the known frame is the neutral)
    and score the landmark sequences with every applicable metric (CA and FID under the classifiers
    trained on the real training sequences, E_lm, smoothness, ...). No decoder: Table 4 scores the
    landmark sequences. A reference row scores the real test sequences."""

    name: ClassVar[str] = "geometry-adaptive"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Label-guided generation from held-out faces' neutral landmarks (Zou et al. Table 4)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator"})
    primary_metric: ClassVar[str] = "ca"
    direction: ClassVar[str] = "higher"
    options: ClassVar[dict[str, Option]] = {
        "length": length_option("length", None, "generate every sequence with this many frames (ground truth "
                                "resampled to it); default: each test sequence's own length"),
    }

    def run(self, ctx: RunContext) -> list[ResultRow]:
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen, gen_s = ctx.fit(ctx.make("generator"), train_ids, "generator")
        fixed_length = ctx.option("length")
        t0 = time.perf_counter()
        items: list[EvalItem] = []
        for i, seq in enumerate(ctx.iterate(test_sequences(ds, test_ids), "geometry-adaptive")):
            gt = seq.resampled(int(fixed_length)) if fixed_length else seq
            _, nlm = neutral_inputs(ds, seq)
            lm = gen.generate(nlm, [seq.label], gt.length, fps=gt.fps, seed=ctx.seed * 100003 + i)
            item = EvalItem(seq.identity, seq.label, gt.fps, gt.landmarks, pred_landmarks=lm[0])
            items.append(item)
            ctx.keep_example(item, str(ctx.config.generator))
        ectx = ctx.eval_context(train_ids)
        keys = [item_key(it) for it in items]
        values = score(ctx, items, ectx)
        rows = [make_row("geometry-adaptive", keys, values, length=fixed_length, train_seconds=gen_s,
                         eval_seconds=time.perf_counter() - t0, details=details(values))]
        gt_items = [EvalItem(it.identity, it.label, it.fps, it.gt_landmarks, pred_landmarks=it.gt_landmarks)
                    for it in items]
        gt_values = score(ctx, gt_items, ectx, reference=True)
        if gt_values:
            rows.append(make_row("geometry-adaptive", keys, gt_values, length=fixed_length, reference=True,
                                 details=details(gt_values)))
        return rows
