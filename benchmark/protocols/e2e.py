"""``e2e``: generator + decoder on held-out identities (FC-4DFS Table 1, Zou et al. Table 1)."""
from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from fc4dfs.benchmark.protocols.common import (Scorer, details, item_key, length_option, make_row,
                                               neutral_inputs)
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.datasets.phases import measure_timing
from fc4dfs.plugins.contracts import EvalItem, Option, Protocol, ResultRow


class EndToEnd(Protocol):
    """For each test sequence (identity, label, length T, fps): generate from its neutral landmarks, decode
    with its identity's neutral mesh (or, with ``--pipeline``, synthesise meshes directly from the
    neutral mesh, and take its landmarks through the topology's embedding; a pipeline or generator that
    controls timing is told the sequence's measured onset/apex/offset, and one that controls intensity
    also generates each condition at the ``intensities`` for intensity adherence), and score it with every applicable metric (E_lm, E_mesh,
    classification accuracy and FID under classifiers trained on the real training sequences, diversity,
    smoothness, and any metric a plugin adds). A reference row (generator and decoder ``gt``) scores the
    real test sequences with the reference metrics under the same classifiers."""

    name: ClassVar[str] = "e2e"
    version: ClassVar[str] = "4"
    description: ClassVar[str] = "Generator + decoder on held-out identities (FC-4DFS Table 1)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator", "decoder"})
    primary_metric: ClassVar[str] = "e_mesh"
    direction: ClassVar[str] = "lower"
    options: ClassVar[dict[str, Option]] = {
        "length": length_option("length", None, "generate every sequence with this many frames (ground truth "
                                "resampled to it); default: each test sequence's own length"),
        "samples": Option("samples", int, 3, "extra samples per condition of a stochastic generator, for "
                          "diversity", low=0, high=100),
        "intensities": Option("intensities", list, [0.25, 0.5, 1.0, 1.5], "intensities each test condition is "
                              "also generated at, for intensity adherence (pipelines and generators that control "
                              "intensity)",
                              low=0.0, high=1.5, item_type=float),
        "classifiers": Option("classifiers", str, "default", "classifier designs behind CA, CA (mesh) and FID: the "
                              "suite's (the shipped frozen evaluator where there is one) or the papers' own (Zou et "
                              "al.'s one-layer LSTM; Potamias et al.'s PCA + 3 FC, whose per-class precision/recall/F1 "
                              "is their Table 3), trained through the component store",
                              choices=("default", "papers")),
    }
    runs_pipelines: ClassVar[bool] = True

    def planned_fits(self, ctx: RunContext) -> list[tuple[str, list[str]]]:
        train_ids = list(ctx.dataset.generator_split()[0])
        return [("generator", train_ids), ("decoder", train_ids)]

    def run(self, ctx: RunContext) -> list[ResultRow]:
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        fixed_length = ctx.option("length")
        if ctx.config.pipeline:
            pipe, train_s = ctx.fit(ctx.make("pipeline"), train_ids, "pipeline")
            method = ctx.config.pipeline
            stochastic = pipe.stochastic
        else:
            gen, gen_s = ctx.fit(ctx.make("generator"), train_ids, "generator")
            dec, dec_s = ctx.fit(ctx.make("decoder"), train_ids, "decoder")
            train_s, method, stochastic = gen_s + dec_s, f"{ctx.config.generator}+{ctx.config.decoder}", gen.stochastic
        n_samples = int(ctx.option("samples")) if stochastic else 0
        levels = [float(x) for x in ctx.option("intensities")]
        t0 = time.perf_counter()
        ectx = ctx.eval_context(train_ids, design=str(ctx.option("classifiers")))
        # streamed: every EVAL_CHUNK items (and their ground truth, for the reference row) are scored, then dropped
        scorer, gt_scorer = Scorer(ctx, ectx), Scorer(ctx, ectx, reference=True)
        keys: list[str] = []
        for i, seq in enumerate(ctx.iterate(test_sequences(ds, test_ids), "e2e")):
            gt = seq.resampled(int(fixed_length)) if fixed_length else seq
            gt_mesh = np.asarray(gt.frames, dtype=np.float32)
            mesh, nlm = neutral_inputs(ds, seq)
            seed = ctx.seed * 100003 + i
            n = 1 + n_samples
            if ctx.config.pipeline:
                # the paper's protocol: the pipeline is told the test sequence's measured phases
                timing = measure_timing(gt_mesh) if "timing" in pipe.controls else None
                meshes = pipe.synthesize(np.repeat(mesh, n, 0), [seq.label] * n, gt.length, fps=gt.fps, seed=seed,
                                         timing=timing)
                out = ds.topology.landmarks(meshes)
                pred = meshes[0]
                sweep = None
                if "intensity" in pipe.controls and levels:
                    sweep = {"levels": levels, "meshes": pipe.synthesize(
                        np.repeat(mesh, len(levels), 0), [seq.label] * len(levels), gt.length, fps=gt.fps,
                        seed=seed, intensity=levels, timing=timing)}
            else:
                # a generator with timing control is told the sequence's measured phases, as a pipeline is
                active = gen.active_controls()
                timing = measure_timing(gt_mesh) if "timing" in active else None
                kw = {"timing": timing} if timing is not None else {}
                # a stochastic generator draws the scored sample and the diversity samples in one batch
                out = gen.generate(np.repeat(nlm, n, 0), [seq.label] * n, gt.length, fps=gt.fps, seed=seed, **kw)
                pred = dec.decode(mesh, nlm, out[:1])[0]
                sweep = None
                if "intensity" in active and levels:
                    k = len(levels)
                    lms = gen.generate(np.repeat(nlm, k, 0), [seq.label] * k, gt.length, fps=gt.fps, seed=seed,
                                       intensity=levels, **kw)
                    sweep = {"levels": levels, "meshes": dec.decode(np.repeat(mesh, k, 0), np.repeat(nlm, k, 0), lms)}
            samples = out if n_samples else None
            item = EvalItem(seq.identity, seq.label, gt.fps, gt.landmarks, pred_landmarks=out[0],
                            gt_mesh=gt_mesh, pred_mesh=pred, samples=samples, requested_timing=timing,
                            intensity_sweep=sweep)
            keys.append(item_key(item))
            scorer.push(item)
            gt_scorer.push(EvalItem(seq.identity, seq.label, gt.fps, item.gt_landmarks,
                                    pred_landmarks=item.gt_landmarks, gt_mesh=gt_mesh, pred_mesh=gt_mesh))
            ctx.keep_example(item, method)
        setting = "e2e" if not fixed_length else f"length={fixed_length}"
        values = scorer.result()
        rows = [make_row(setting, keys, values, length=fixed_length, train_seconds=train_s,
                         eval_seconds=time.perf_counter() - t0, details=details(values))]
        gt_values = gt_scorer.result()
        if gt_values:
            rows.append(make_row(setting, keys, gt_values, length=fixed_length, reference=True,
                                 details=details(gt_values)))
        return rows
