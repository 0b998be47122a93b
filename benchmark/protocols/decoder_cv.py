"""``decoder-cv``: a decoder on ground-truth landmarks, k-fold identity cross-validation (FC-4DFS Table 2)."""
from __future__ import annotations

import time
from typing import Any, ClassVar, Mapping

import numpy as np

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.protocols.common import Scorer, details, item_key, make_row, neutral_inputs, pool
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.plugins.contracts import ComponentError, EvalItem, MetricValue, Option, Protocol, ResultRow


class DecoderCV(Protocol):
    """Train on k-1 identity folds, decode every test frame from its ground-truth landmarks and its
    identity's neutral mesh, and score each fold with every applicable metric (E_mesh: per-vertex
    Euclidean error in mm, and any metric a plugin adds for decoded meshes). A ``pooled`` row (fold None)
    scores the union of the folds (every test item once), as FC-4DFS Table 2 reports it."""

    name: ClassVar[str] = "decoder-cv"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Decoder alone on ground-truth landmarks, 4-fold identity CV (FC-4DFS Table 2)"
    needs: ClassVar[frozenset[str]] = frozenset({"decoder"})
    primary_metric: ClassVar[str] = "e_mesh"
    direction: ClassVar[str] = "lower"
    options: ClassVar[dict[str, Option]] = {
        "folds": Option("folds", int, 4, "number of identity folds", low=2, high=100),
        "only_folds": Option("only_folds", list, None, "run only these folds (0-based), e.g. [0,2]; default all",
                             low=0, high=99, item_type=int, nullable=True),
    }

    @classmethod
    def resolve_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        opts = super().resolve_options(given)
        only = opts["only_folds"]
        if only is not None and any(f >= opts["folds"] for f in only):
            raise ComponentError(f"protocol {cls.name!r} option only_folds={only} is out of range: folds are "
                                 f"0 .. {opts['folds'] - 1} (folds={opts['folds']})")
        return opts

    def planned_fits(self, ctx: RunContext) -> list[tuple[str, list[str]]]:
        only = ctx.option("only_folds")
        folds = ctx.dataset.folds(int(ctx.option("folds")))
        return [("decoder", list(train)) for fold, (train, _) in enumerate(folds) if only is None or fold in only]

    def run(self, ctx: RunContext) -> list[ResultRow]:
        k = int(ctx.option("folds"))
        only = ctx.option("only_folds")
        ds = ctx.dataset
        if len(ds.identities) < k:
            raise UserError(f"{k} folds need >= {k} identities, the dataset has {len(ds.identities)} "
                            "(--protocol-opt folds=N)")
        rows: list[ResultRow] = []
        parts: list[dict[str, MetricValue]] = []
        all_keys: list[str] = []
        dec_name = ctx.config.decoder
        for fold, (train_ids, test_ids) in enumerate(ds.folds(k)):
            if only is not None and fold not in only:
                continue
            decoder, train_s = ctx.fit(ctx.make("decoder"), train_ids, f"decoder-fold{fold}")
            t0 = time.perf_counter()
            # streamed: every EVAL_CHUNK items are scored, then dropped
            scorer = Scorer(ctx, ctx.eval_context(train_ids, classifiers=False))
            keys: list[str] = []
            for seq in ctx.iterate(test_sequences(ds, test_ids), f"decode fold {fold}"):
                mesh, nlm = neutral_inputs(ds, seq)
                gt_lm = seq.landmarks
                pred = decoder.decode(mesh, nlm, gt_lm[None])[0]
                gt = np.asarray(seq.frames, dtype=np.float32)
                item = EvalItem(seq.identity, seq.label, seq.fps, gt_lm, gt_mesh=gt, pred_mesh=pred)
                keys.append(item_key(item))
                scorer.push(item)
                ctx.keep_example(item, dec_name)
            values = scorer.result()
            parts.append(values)
            all_keys += keys
            rows.append(make_row(f"fold{fold}", keys, values, fold=fold,
                                 train_seconds=train_s, eval_seconds=time.perf_counter() - t0,
                                 details=details(values)))
        pooled = make_row("pooled", all_keys, pool(ctx, parts), train_seconds=sum(r.train_seconds for r in rows),
                          eval_seconds=sum(r.eval_seconds for r in rows))
        return rows + [pooled]
