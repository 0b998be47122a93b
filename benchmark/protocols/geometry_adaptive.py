"""``geometry-adaptive``: label-guided generation from held-out faces (Zou et al. §5.4, Alg. 4, Table 4)."""
from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from fc4dfs.benchmark.protocols.common import (details, generate_batched, item_key, length_option, make_row,
                                               neutral_inputs, score)
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.plugins.contracts import EvalItem, Option, Protocol, ResultRow


class GeometryAdaptive(Protocol):
    """For each test sequence of a held-out identity, generate its label's expression from that face's
    neutral landmarks (the generator's ``generate``: Alg. 4 for ``ddpm``, the known frame is the neutral;
    one call per group of sequences of one length and frame rate) and score the landmark sequences with
    every applicable metric (CA and FID under the classifiers trained on the real training sequences,
    E_lm, smoothness, ...). No decoder: Table 4 scores the landmark sequences. A reference row scores the
    real test sequences. With ``length`` every sequence is time-normalised to that many frames, as Zou et
    al. interpolate theirs to 40 (§4): the ground truth is resampled over its duration and the generator
    is asked for ``length`` frames without a frame rate."""

    name: ClassVar[str] = "geometry-adaptive"
    version: ClassVar[str] = "2"  # 2: one generator call per (length, fps) group; with length, no frame rate
    description: ClassVar[str] = "Label-guided generation from held-out faces' neutral landmarks (Zou et al. Table 4)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator"})
    primary_metric: ClassVar[str] = "ca"
    direction: ClassVar[str] = "higher"
    options: ClassVar[dict[str, Option]] = {
        "length": length_option("length", None, "generate every sequence with this many frames and no frame rate "
                                "(ground truth resampled to it; Zou et al. interpolate every sequence to 40 frames); "
                                "default: each test sequence's own length and frame rate"),
    }

    def run(self, ctx: RunContext) -> list[ResultRow]:
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen, gen_s = ctx.fit(ctx.make("generator"), train_ids, "generator")
        fixed_length = ctx.option("length")
        t0 = time.perf_counter()
        seqs = test_sequences(ds, test_ids)
        gts = [s.resampled(int(fixed_length)) if fixed_length else s for s in seqs]
        preds = label_control(ctx, gen, seqs, gts, fixed_length is not None, "geometry-adaptive")
        items = [EvalItem(s.identity, s.label, g.fps, g.landmarks, pred_landmarks=p) for s, g, p in zip(seqs, gts, preds)]
        for item in items:
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


def label_control(ctx: RunContext, gen: Any, seqs: list[Any], gts: list[Any], time_normalised: bool,
                  desc: str) -> list[np.ndarray]:
    """Alg. 4 from each test face: ``gen.generate`` from sequence i's neutral landmarks and label at the
    length of ``gts[i]`` (its frame rate too, unless ``time_normalised``), batched by (length, fps).
    Shared by ``geometry-adaptive`` and ``text-control``'s label row, which therefore agree exactly."""
    nlms = [neutral_inputs(ctx.dataset, s)[1] for s in seqs]

    def call(idx: list[int], length: int, fps: float | None, seed: int) -> np.ndarray:
        return gen.generate(np.concatenate([nlms[i] for i in idx]), [seqs[i].label for i in idx], length, fps=fps,
                            seed=seed)

    return generate_batched(ctx, [(g.length, None if time_normalised else g.fps) for g in gts], desc, call)
