"""``text-control``: text-guided generation on held-out identities (Zou et al. §5.2, Table 2)."""
from __future__ import annotations

import time
from functools import partial
from typing import Any, ClassVar

import numpy as np

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.protocols.common import (details, generate_batched, item_key, length_option, make_row,
                                               neutral_inputs, score)
from fc4dfs.benchmark.protocols.geometry_adaptive import label_control
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.datasets.base import enriched_text
from fc4dfs.plugins.contracts import EvalItem, Option, Protocol, ResultRow

TASKS = ("raw", "enriched")


def item_text(ds: Any, seq: Any, index: int, task: str) -> str:
    """The description a test sequence is generated from: its label's ``index``-th raw text (cycling
    through the label's words and synonyms), or that text's enriched sentence for the sequence's kind."""
    raw = ds.label_texts(seq.label)
    text = raw[index % len(raw)]
    return text if task == "raw" else enriched_text(text, seq.kind)


def _text_call(gen: Any, nlms: list[np.ndarray], texts: list[str], idx: list[int], length: int, fps: float | None,
               seed: int) -> np.ndarray:
    return gen.generate_text(np.concatenate([nlms[i] for i in idx]), [texts[i] for i in idx], length, fps=fps,
                             seed=seed)


class TextControl(Protocol):
    """For each test sequence, generate from its identity's neutral landmarks (geometry-adaptive, Alg. 4)
    guided by a description of it instead of its label: the raw-text task uses the label's words or a
    synonym from the dataset's vocabulary, the enriched-text task a sentence ("from the neutral face to
    a big smile"). Scored with every applicable landmark metric (CA and FID under the classifiers trained
    on the real training sequences, ...); the label-control row (the same generator guided by the label)
    and a reference row of the real test sequences stand beside them, as in Table 2. Sequences of one
    length and frame rate are generated in one call; ``length`` time-normalises them as in
    ``geometry-adaptive``."""

    name: ClassVar[str] = "text-control"
    version: ClassVar[str] = "2"  # 2: one generator call per (length, fps) group; option length
    description: ClassVar[str] = "Text-guided generation: raw and enriched text beside label control (Zou et al. Table 2)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator"})
    primary_metric: ClassVar[str] = "ca"
    direction: ClassVar[str] = "higher"
    options: ClassVar[dict[str, Option]] = {
        "tasks": Option("tasks", list, list(TASKS), "which text tasks to run (raw, enriched)", item_type=str),
        "label_row": Option("label_row", bool, True, "also score label control with the same generator (the "
                            "geometry-adaptive protocol's computation)"),
        "length": length_option("length", None, "generate every sequence with this many frames and no frame rate "
                                "(ground truth resampled to it; Zou et al. interpolate every sequence to 40 frames); "
                                "default: each test sequence's own length and frame rate"),
    }

    def run(self, ctx: RunContext) -> list[ResultRow]:
        tasks = list(ctx.option("tasks"))
        unknown = [t for t in tasks if t not in TASKS]
        if unknown or not tasks:
            raise UserError(f"protocol 'text-control' option tasks={tasks} must name some of {', '.join(TASKS)}")
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen = ctx.make("generator")
        if not gen.can_generate_text():
            raise UserError(f"generator {gen.name!r} cannot be conditioned on text (it has no generate_text)")
        gen, gen_s = ctx.fit(gen, train_ids, "generator")
        fixed_length = ctx.option("length")
        seqs = test_sequences(ds, test_ids)
        gts = [s.resampled(int(fixed_length)) if fixed_length else s for s in seqs]
        nlms = [neutral_inputs(ds, s)[1] for s in seqs]
        keys = [(g.length, None if fixed_length else g.fps) for g in gts]
        ectx = ctx.eval_context(train_ids)
        settings: list[tuple[str, str | None]] = [(f"{t}-text", t) for t in tasks]
        if ctx.option("label_row"):
            settings.append(("label", None))
        rows: list[ResultRow] = []
        items: list[EvalItem] = []
        for setting, task in settings:
            t0 = time.perf_counter()
            texts = [item_text(ds, seq, i, task) for i, seq in enumerate(seqs)] if task else []
            if task is None:
                preds = label_control(ctx, gen, seqs, gts, fixed_length is not None, setting)
            else:
                preds = generate_batched(ctx, keys, setting, partial(_text_call, gen, nlms, texts))
            items = [EvalItem(s.identity, s.label, g.fps, g.landmarks, pred_landmarks=p)
                     for s, g, p in zip(seqs, gts, preds)]
            values = score(ctx, items, ectx)
            info = details(values)
            if texts:
                info["texts"] = sorted(set(texts))
            rows.append(make_row(setting, [item_key(it) for it in items], values, length=fixed_length,
                                 train_seconds=gen_s, eval_seconds=time.perf_counter() - t0, details=info))
            if items:
                ctx.keep_example(items[0], f"{ctx.config.generator} ({setting})")
        gt_items = [EvalItem(it.identity, it.label, it.fps, it.gt_landmarks, pred_landmarks=it.gt_landmarks)
                    for it in items]
        gt_values = score(ctx, gt_items, ectx, reference=True)
        if gt_values:
            rows.append(make_row("text-control", [item_key(it) for it in gt_items], gt_values, length=fixed_length,
                                 reference=True, details=details(gt_values)))
        return rows
