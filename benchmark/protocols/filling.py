"""``filling``: expression filling of partial test sequences (Zou et al. §5.3, Alg. 3, Table 3)."""
from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from fc4dfs.benchmark.errors import UserError
from fc4dfs.benchmark.protocols.common import details, generate_batched, item_key, length_option, make_row, score
from fc4dfs.benchmark.runner import RunContext, test_sequences
from fc4dfs.plugins.contracts import EvalItem, Option, Protocol, ResultRow

MODES = ("ffe", "ffm", "ffb")
#: the baseline row's generator name
MEAN_IMPUTATION = "mean-imputation"


def filling_mask(mode: str, length: int, hidden: float) -> np.ndarray:
    """Known frames ``[length]`` bool for a filling case; ``h = round(hidden * length)`` frames are hidden
    (at least 1, at most ``length - 2`` so two frames stay known).

    ``ffe``: the last ``h`` frames are hidden (filling the end); ``ffb``: the first ``h``; ``ffm``: the
    middle ``h``, with ``(length - h) // 2`` known frames before them and the rest after.
    """
    if mode not in MODES:
        raise ValueError(f"filling mode must be one of {MODES}, got {mode!r}")
    if length < 3:
        raise ValueError(f"filling needs sequences of >= 3 frames, got {length}")
    h = int(min(max(round(hidden * length), 1), length - 2))
    known = np.ones(length, dtype=bool)
    if mode == "ffe":
        known[length - h:] = False
    elif mode == "ffb":
        known[:h] = False
    else:
        front = (length - h) // 2
        known[front:front + h] = False
    return known


def mean_imputation(landmarks: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The baseline of Table 3: every hidden frame is the mean of the known frames ``[T, L, 3]``."""
    out = np.array(landmarks, dtype=np.float32, copy=True)
    out[~known] = out[known].mean(0)
    return out


class Filling(Protocol):
    """For each test sequence and each case — hide the end (FFE), the middle (FFM) or the beginning (FFB),
    a ``hidden`` fraction of its frames (default 0.5: the mean of the paper's draws, l ~ U[10, 30] known
    of 40 frames for FFE/FFB and 2 x U[5, 15] for FFM) — fill it with the generator's ``fill`` (Alg. 3,
    unguided unless ``guided``) and with the mean-imputation baseline. Rows per case and method: CA, FID
    and every other applicable landmark metric of the whole filled sequences, and ``e_lm_hidden``, E_lm
    over the hidden frames only. A reference row scores the real test sequences. Sequences of one length
    are filled in one call; ``length`` resamples every sequence to that many frames first."""

    name: ClassVar[str] = "filling"
    # 2: the mean-imputation row keeps its per-item values (key "<case>/mean-imputation"); one fill call per
    # group of sequences of one length; option length
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Expression filling of hidden end / middle / beginning frames (Zou et al. Table 3)"
    needs: ClassVar[frozenset[str]] = frozenset({"generator"})
    primary_metric: ClassVar[str] = "ca"
    direction: ClassVar[str] = "higher"
    options: ClassVar[dict[str, Option]] = {
        "modes": Option("modes", list, list(MODES), "filling cases: ffe (hide the end), ffm (the middle), "
                        "ffb (the beginning)", item_type=str),
        "hidden": Option("hidden", float, 0.5, "fraction of each sequence's frames that is hidden",
                         low=0.0, high=0.9, low_open=True),
        "guided": Option("guided", bool, False, "guide the filling by the sequence's label (Alg. 3 is unguided)"),
        "length": length_option("length", None, "resample every test sequence to this many frames over its "
                                "duration (Zou et al. interpolate every sequence to 40 frames); default: its own"),
    }

    def run(self, ctx: RunContext) -> list[ResultRow]:
        modes = list(ctx.option("modes"))
        if not modes or any(m not in MODES for m in modes):
            raise UserError(f"protocol 'filling' option modes={modes} must name some of {', '.join(MODES)}")
        hidden = float(ctx.option("hidden"))
        guided = bool(ctx.option("guided"))
        ds = ctx.dataset
        train_ids, test_ids = ds.generator_split()
        gen = ctx.make("generator")
        if not gen.can_fill():
            raise UserError(f"generator {gen.name!r} cannot fill a partial sequence (it has no fill)")
        gen, gen_s = ctx.fit(gen, train_ids, "generator")
        fixed_length = ctx.option("length")
        seqs = [s.resampled(int(fixed_length)) if fixed_length else s
                for s in test_sequences(ds, test_ids)]
        ectx = ctx.eval_context(train_ids)
        rows: list[ResultRow] = []
        for mode in modes:
            filled: dict[str, list[EvalItem]] = {ctx.config.generator: [], MEAN_IMPUTATION: []}
            hidden_items: dict[str, list[EvalItem]] = {ctx.config.generator: [], MEAN_IMPUTATION: []}
            seconds = {ctx.config.generator: 0.0, MEAN_IMPUTATION: 0.0}
            t0 = time.perf_counter()

            def call(idx: list[int], length: int, fps: float | None, seed: int, mode: str = mode) -> np.ndarray:
                known = np.repeat(filling_mask(mode, length, hidden)[None], len(idx), 0)
                return gen.fill(np.stack([seqs[i].landmarks for i in idx]), known,
                                labels=[seqs[i].label for i in idx] if guided else None, seed=seed)

            outs = generate_batched(ctx, [(s.length, None) for s in seqs], mode, call)
            seconds[ctx.config.generator] = time.perf_counter() - t0
            for i, (seq, out) in enumerate(zip(seqs, outs)):
                gt = seq.landmarks
                known = filling_mask(mode, seq.length, hidden)
                t0 = time.perf_counter()
                base = mean_imputation(gt, known)
                seconds[MEAN_IMPUTATION] += time.perf_counter() - t0
                for method, pred in ((ctx.config.generator, out), (MEAN_IMPUTATION, base)):
                    filled[method].append(EvalItem(seq.identity, seq.label, seq.fps, gt, pred_landmarks=pred))
                    hidden_items[method].append(EvalItem(seq.identity, seq.label, seq.fps, gt[~known],
                                                         pred_landmarks=pred[~known]))
                if i == 0:
                    ctx.keep_example(filled[ctx.config.generator][-1], f"{ctx.config.generator} ({mode})")
            for method in (ctx.config.generator, MEAN_IMPUTATION):
                values = score(ctx, filled[method], ectx)
                on_hidden = score(ctx, hidden_items[method], ectx)
                if "e_lm" in on_hidden:
                    values["e_lm_hidden"] = on_hidden["e_lm"]
                keys = [item_key(it) for it in filled[method]]
                row = make_row(mode, keys, values, length=fixed_length,
                               generator=None if method == ctx.config.generator else MEAN_IMPUTATION, train_seconds=gen_s if method == ctx.config.generator
                                     else 0.0, eval_seconds=seconds[method],
                                     details={**details(values), "hidden_fraction": hidden,
                                              "hidden_frames": [int((~filling_mask(mode, s.length, hidden)).sum())
                                                                for s in seqs]})
                rows.append(row)
        gt_items = [EvalItem(s.identity, s.label, s.fps, s.landmarks, pred_landmarks=s.landmarks) for s in seqs]
        gt_values = score(ctx, gt_items, ectx, reference=True)
        if gt_values:
            rows.append(make_row("filling", [item_key(it) for it in gt_items], gt_values, length=fixed_length,
                                 reference=True, details=details(gt_values)))
        return rows
