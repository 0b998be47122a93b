"""``reproduce``: the tables of the three papers the suite reproduces, on one dataset, with a claim-by-claim
verdict.

``--tables`` names them: ``1``-``4`` are FC-4DFS's, ``Z1``-``Z5`` Zou et al. 2023's ("4D Facial Expression
Diffusion Model"), ``P`` Potamias et al. 2020's Table 2 (``e2e`` of the ``potamias`` pipeline and its
blendshape baseline, per expression), their Table 3 (per-class precision / recall / F1 of their classifier
on the ground truth and both pipelines' meshes: the P runs are scored with the papers' classifier designs)
and Fig. 5 (``fig5-frame-error.png``).

The plan is a list of RunConfigs. FC-4DFS: Table 1, every generator x {s2d, miadnet} in ``e2e``; Table 2,
``decoder-cv`` for every decoder and the MIADNet ablations; Table 3, the generator ablation in
``length-ablation``; Table 4, the alpha sweep. Zou et al. (Z1-Z4 with every sequence time-normalised to 40
frames, as the paper's): Z1, label control, ``e2e`` of ``ddpm`` and the paper's other generators
(Action2Motion, Motion3DGAN, ACTOR), decoded with S2D (Z1 scores the landmark sequences); Z2,
``text-control`` of ``ddpm`` (raw and enriched text; the label-control row beside it is Z4's run, the same
computation); Z3, ``filling`` (FFE, FFM, FFB and the mean-imputation row); Z4, ``geometry-adaptive``; Z5,
``decoder-cv`` of lgmd, its "w/o attention" ablation, s2d, neural3dmm and linear (the same runs as FC-4DFS
Table 2's rows). Potamias et al.: ``e2e`` of the ``potamias`` pipeline and its blendshape baseline. Runs
execute on an executor (:mod:`fc4dfs.benchmark.executor`: one after another, or as Ray tasks); finished
runs are reused, so an interrupted reproduction resumes where it stopped. The report puts each measured
table beside the paper's and judges each claim with a paired bootstrap 95 % interval: a claim that A
beats B holds only where the interval of the difference excludes zero in the claimed direction; a claim
that A is close to B holds only where the interval lies within the stated margin.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fc4dfs.benchmark import paper_tables as paper
from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.protocols.filling import MEAN_IMPUTATION
from fc4dfs.benchmark.runner import RunResult
from fc4dfs.datasets.storage import atomic_write_json, atomic_write_text
from fc4dfs.plugins.contracts import ResultRow
from fc4dfs.plugins.manager import Registry, registry as global_registry

ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
DEFAULT_ALPHA = 0.3
#: Table 3 rows: paper name -> (generator, options)
TABLE3_ROWS = {
    "mlp": ("mlp", {"temporal_alpha": 0.0}),
    "lstm": ("lstm", {"temporal_alpha": 0.0}),
    "lstm+loss-temp": ("lstm", {"temporal_alpha": DEFAULT_ALPHA}),
    "lstm+freq": ("fc_lstm", {"temporal_alpha": 0.0}),
    "lstm+freq+loss-temp": ("fc_lstm", {"temporal_alpha": DEFAULT_ALPHA}),
}
TABLE1_DECODERS = ("s2d", "miadnet")
#: Potamias et al. 2020 Table 2 rows: paper name -> pipeline
POTAMIAS_ROWS = {"Proposed": "potamias", "Baseline": "potamias-pca"}
#: every table ``--tables`` accepts (1-4: FC-4DFS; Z1-Z5: Zou et al. 2023; P: Potamias et al. 2020)
TABLES = ("1", "2", "3", "4", "Z1", "Z2", "Z3", "Z4", "Z5", "P")
#: Zou et al.'s Table 1 runs are decoded with this decoder (their CA and FID score the landmark sequences)
ZOU_TABLE1_DECODER = "s2d"
#: Zou et al. interpolate every sequence to 40 frames (§4) and evaluate Tables 1-4 on them: the plan's
#: protocols time-normalise every test sequence to this length (which also lets every sequence of a setting
#: be generated in one batch: 0.25 instead of 1.5 CPU-s per guided DDPM sequence at the quick budget)
ZOU_LENGTH = 40
#: Table Z1 also scores the paper's guidance (Eq. 9, classifier guidance) where ``ddpm``'s default is another
#: (classifier-free guidance at the quick budget): row label -> (generator, options, paper row)
ZOU_TABLE1_VARIANTS = {"ddpm (classifier guidance)": ("ddpm", {"guidance": "classifier"}, "Ours")}
#: the setting (per-item key) of Table Z1's rows: ``e2e`` names a fixed-length row by its length
ZOU_TABLE1_SETTING = f"length={ZOU_LENGTH}"
#: Zou et al.'s Tables 2-4: table -> protocol of the ``ddpm`` run
ZOU_PROTOCOLS = {"Z2": "text-control", "Z3": "filling", "Z4": "geometry-adaptive"}
#: Table Z2's label-control row: the geometry-adaptive run (Table Z4's)
ZOU_LABEL_ROW = "ddpm label control"
#: a "close to" claim on classification accuracy holds when the 95 % interval of A - B lies within
#: +- this many points (the project's own target for the DDPM: CA within 10 points of the real sequences)
CLOSE_CA_POINTS = 10.0
DECODER_PREFERENCE = ("miadnet", "s2d", "pca", "neural3dmm")


@dataclass
class PlannedRun:
    table: str
    label: str
    config: RunConfig
    result: RunResult | None = None
    error: str | None = None


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: the tables asked for (empty: those of ``runs``); a claim is reported when its table was asked for
    tables: tuple[str, ...] = ()

    def asked(self, table: str) -> bool:
        return table in (self.tables or {p.table for p in self.runs})


def make_plan(reg: Registry, dataset: str, budget: str, seeds: list[int], device: str,
              dataset_options: dict[str, Any], tables: tuple[str, ...] = TABLES) -> Plan:
    gens, decs = set(reg.names("generator")), set(reg.names("decoder"))
    plan = Plan(tables=tuple(tables))
    base = dict(dataset=dataset, budget=budget, device=device, dataset_options=dataset_options)

    def add(table: str, label: str, **kw: Any) -> None:
        for seed in seeds:
            plan.runs.append(PlannedRun(table, label, RunConfig(seed=seed, **base, **kw)))

    builtin_decs = [d for d in ("pca", "neural3dmm", "s2d", "s2d+lm-n", "s2d+mesh-n", "miadnet")]
    if "2" in tables:
        for d in builtin_decs:
            if d in decs:
                add("2", d, protocol="decoder-cv", decoder=d)
            else:
                plan.missing.append(f"Table 2: decoder {d!r} is not registered")
        for d in sorted(decs - set(builtin_decs)):
            add("2", d, protocol="decoder-cv", decoder=d)
    if "P" in tables:
        for row, pipe in POTAMIAS_ROWS.items():
            if pipe in reg.names("pipeline"):
                # scored with the papers' classifiers: Potamias et al.'s gives Table 3 (per-class P/R/F1)
                add("P", pipe, protocol="e2e", pipeline=pipe, protocol_options={"classifiers": "papers"})
            else:
                plan.missing.append(f"Potamias et al. Table 2: pipeline {pipe!r} (row {row}) is not registered")
    if "1" in tables:
        for d in TABLE1_DECODERS:
            if d not in decs:
                plan.missing.append(f"Table 1: decoder {d!r} is not registered")
                continue
            for g in sorted(gens):
                add("1", f"{g}+{d}", protocol="e2e", generator=g, decoder=d)
    best_dec = next((d for d in DECODER_PREFERENCE if d in decs), min(decs) if decs else None)
    if best_dec is None and ("3" in tables or "4" in tables):
        plan.missing.append("Tables 3-4: no decoder registered")
    if "3" in tables and best_dec:
        for label, (g, opts) in TABLE3_ROWS.items():
            if g in gens:
                add("3", label, protocol="length-ablation", generator=g, decoder=best_dec, generator_options=opts)
            else:
                plan.missing.append(f"Table 3: generator {g!r} (row {label}) is not registered")
    if "4" in tables and best_dec:
        if "fc_lstm" in gens:
            for a in ALPHAS:
                add("4", f"alpha={a:g}", protocol="length-ablation", generator="fc_lstm", decoder=best_dec,
                    generator_options={"temporal_alpha": a})
        else:
            plan.missing.append("Table 4: generator 'fc_lstm' is not registered")
    # after FC-4DFS's: a run both plans share keeps the FC-4DFS table's job (rendered examples)
    if "Z5" in tables:
        for d in paper.ZOU_TABLE5["Identity split"]:
            if d in decs:
                add("Z5", d, protocol="decoder-cv", decoder=d)
            else:
                plan.missing.append(f"Zou et al. Table 5: decoder {d!r} is not registered")
    if "Z1" in tables:
        for g, row in paper.ZOU_TABLE1_GENERATORS.items():
            if g not in gens or ZOU_TABLE1_DECODER not in decs:
                what = f"generator {g!r}" if g not in gens else f"decoder {ZOU_TABLE1_DECODER!r}"
                plan.missing.append(f"Zou et al. Table 1: {what} (row {row}) is not registered")
            else:
                add("Z1", g, protocol="e2e", generator=g, decoder=ZOU_TABLE1_DECODER,
                    protocol_options={"length": ZOU_LENGTH})
        for label, (g, opts, _) in ZOU_TABLE1_VARIANTS.items():
            declared = reg.load("generator", g).defaults if g in gens else {}
            if all(k in declared and declared[k] != v for k, v in opts.items()):
                add("Z1", label, protocol="e2e", generator=g, decoder=ZOU_TABLE1_DECODER, generator_options=opts,
                    protocol_options={"length": ZOU_LENGTH})
    for table, protocol in ZOU_PROTOCOLS.items():
        if table in tables:
            if "ddpm" in gens:
                # text-control's label row is geometry-adaptive's computation (same items, seeds and calls):
                # Table 2 takes it from that run, computed once for Tables 2 and 4
                opts: dict[str, Any] = {"length": ZOU_LENGTH}
                add(table, "ddpm", protocol=protocol, generator="ddpm",
                    protocol_options={**opts, "label_row": False} if table == "Z2" else opts)
                if table == "Z2":
                    add(table, ZOU_LABEL_ROW, protocol=ZOU_PROTOCOLS["Z4"], generator="ddpm", protocol_options=opts)
            else:
                plan.missing.append(f"Zou et al. Table {table[1:]}: generator 'ddpm' is not registered")
    return plan


def run_plan(plan: Plan, out_dir: Path, leaderboard: Path | None, progress: bool = True,
             retrain_classifier: bool = False, reg: Registry | None = None,
             log: Callable[[str], None] = print, executor: Any = None) -> None:
    """Execute (or reuse) every planned run on ``executor`` (default: local, one after another); a failing
    run is recorded and the rest go on."""
    from fc4dfs.benchmark.executor import Job, LocalExecutor, Settings

    jobs = [Job(pr.config, f"T{pr.table} {pr.label}", render=pr.table in ("1", "2")) for pr in plan.runs]
    settings = Settings(out_dir, leaderboard, resume=True, retrain_classifier=retrain_classifier, progress=progress)
    outcomes = (executor or LocalExecutor()).run(jobs, settings, reg=reg, desc="reproduce", log=log)
    for pr in plan.runs:
        out = outcomes[pr.config.run_id]
        pr.result, pr.error = out.result, out.error
        if out.error:
            log(f"run {pr.config.run_id} failed: {out.error}")


# --------------------------------------------------------------------------- report
def _rows(pr: PlannedRun) -> list[ResultRow]:
    return [ResultRow.from_dict(r) for r in pr.result.record["rows"]] if pr.result else []


def _per_item(pr: PlannedRun) -> dict[str, dict[str, list]]:
    if not pr.result:
        return {}
    path = pr.result.run_dir / "per_item.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _agg(values: list[float]) -> tuple[float, float]:
    """Mean and std of the values given (NaN std for a single value: one run has no spread, not "± 0")."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std()) if len(v) > 1 else float("nan")


def _fmt(m: float, s: float | None = None, digits: int = 3) -> str:
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "—"
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None and not math.isnan(s) else "")


def _pair(runs_a: list[PlannedRun], runs_b: list[PlannedRun], metric: str, settings: list[str] | None = None):
    """Concatenate paired per-item values of two methods over seeds and settings.

    Without ``settings``: every row of both runs over all their test items (not per-fold rows, not
    the ground-truth reference), so that each test item counts once per setting.
    """
    a_vals, b_vals = [], []
    for ra, rb in zip(sorted(runs_a, key=lambda r: r.config.seed), sorted(runs_b, key=lambda r: r.config.seed)):
        pa, pb = _per_item(ra), _per_item(rb)
        whole = lambda pr: {r.key for r in _rows(pr) if r.pooled}  # noqa: E731
        for setting in (settings or sorted(whole(ra) & whole(rb))):
            da = dict((k, v) for k, v in pa.get(setting, {}).get(metric, []))
            db = dict((k, v) for k, v in pb.get(setting, {}).get(metric, []))
            for k in sorted(set(da) & set(db)):
                a_vals.append(da[k])
                b_vals.append(db[k])
    return np.asarray(a_vals), np.asarray(b_vals)


@dataclass
class Claim:
    text: str
    verdict: str
    effect: str
    ci: str


def judge(text: str, a: np.ndarray, b: np.ndarray, direction: str, seed: int = 0) -> Claim:
    """Claim 'A better than B': for lower-is-better, diff = A - B must be < 0 with the CI below zero."""
    from fc4dfs.benchmark.stats import paired_bootstrap

    if len(a) == 0:
        return Claim(text, "not measured", "—", "—")
    r = paired_bootstrap(a, b, n_boot=2000, seed=seed)
    better = r["hi"] < 0 if direction == "lower" else r["lo"] > 0
    worse = r["lo"] > 0 if direction == "lower" else r["hi"] < 0
    verdict = "holds" if better else ("contradicted" if worse else "not significant")
    rel = r["diff"] / abs(float(np.mean(b))) * 100 if np.mean(b) else float("nan")
    return Claim(text, verdict, f"{r['diff']:+.4g} ({rel:+.1f} %)", f"[{r['lo']:+.4g}, {r['hi']:+.4g}] (n={r['n']})")


def build_report(plan: Plan, dataset: str, budget: str, wall_s: float) -> str:
    col12, col3 = paper.column_for(dataset)
    by = lambda table, label: [p for p in plan.runs if p.table == table and p.label == label and p.result]  # noqa: E731
    papers = [name for name, keys in (("FC-4DFS", "1234"), ("Zou et al. 2023", "Z"), ("Potamias et al. 2020", "P"))
              if any(plan.asked(t) for t in TABLES if t[0] in keys)]
    head = (f"Wall time: {wall_s / 60:.1f} min. Seeds: {sorted({p.config.seed for p in plan.runs})}. Errors in mm: "
            "E_lm and E_mesh are the mean over every landmark/vertex of every frame of every test sequence.")
    if "FC-4DFS" in papers:
        head += (f" FC-4DFS's paper columns: {col12} (Tables 1-2), {col3} (Tables 3-4); ± is the std over seeds in "
                 "Table 1, and the std over every vertex of every frame (mean over seeds) in Tables 2-4, as the "
                 "paper reports it.")
    if "Zou et al. 2023" in papers:
        head += (" Zou et al.'s paper column: CoMA; ± is the std over seeds in Tables Z1-Z4 and the std over "
                 "every vertex of every frame in Table Z5.")
    lines = [f"# Reproduction of {', '.join(papers) or 'nothing'} on `{dataset}` (budget `{budget}`)", "", head, ""]
    if plan.missing:
        lines += ["**Missing components** (not run):", ""] + [f"- {m}" for m in plan.missing] + [""]
    failed = [p for p in plan.runs if p.error]
    if failed:
        lines += ["**Failed runs** (recorded in their run directories):", ""]
        lines += [f"- Table {p.table} {p.label} seed {p.config.seed}: {p.error}" for p in failed] + [""]

    def decoder_table(table: str, ref: dict, column: str, digits: int) -> None:
        lines.extend([f"| decoder | measured E_mesh (pooled) | per-fold means | paper ({column}) |", "|---|---|---|---|"])
        for lab in dict.fromkeys(p.label for p in plan.runs if p.table == table):
            runs = by(table, lab)
            pooled = [r for pr in runs for r in _rows(pr) if r.pooled]
            folds = [r.metrics["e_mesh"] for pr in runs for r in _rows(pr) if r.fold is not None]
            m = _agg([r.metrics["e_mesh"] for r in pooled])[0]
            s = _agg([r.metrics["e_mesh_std"] for r in pooled])[0]
            lines.append(f"| {lab} | {_fmt(m, s)} | {', '.join(f'{x:.3f}' for x in folds)} | "
                         f"{_fmt(*ref[lab], digits=digits) if lab in ref else '—'} |")
        lines.append("")

    if any(p.table == "2" for p in plan.runs):
        lines += ["## Table 2 — decoders, 4-fold identity cross-validation", ""]
        decoder_table("2", paper.TABLE2[col12], col12, 3)

    # Table 1
    labels1 = list(dict.fromkeys(p.label for p in plan.runs if p.table == "1"))
    if labels1:
        metrics = ["e_lm", "e_mesh", "ca", "ca_mesh", "fid", "diversity", "smoothness"]
        lines += ["## Table 1 — end to end on held-out identities", "",
                  "| method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        gt_rows = [r for p in plan.runs if p.table == "1" and p.result for r in _rows(p) if r.reference]
        if gt_rows:
            lines.append("| gt | " + " | ".join(_fmt(*_agg([r.metrics[m] for r in gt_rows[:1]]))
                                                 if m in gt_rows[0].metrics else "—" for m in metrics) + " |")
        for lab in labels1:
            rows = [r for pr in by("1", lab) for r in _rows(pr) if r.pooled]
            cells = []
            for m in metrics:
                mm, ss = _agg([r.metrics.get(m, float("nan")) for r in rows])
                cells.append(_fmt(mm, ss if len(rows) > 1 else None))
            lines.append(f"| {lab} | " + " | ".join(cells) + " |")
        lines += ["", f"Paper ({col12}; E_lm, E_mesh, CA): " + "; ".join(
            f"{k}: {', '.join('—' if v is None else str(v) for v in vals)}" for k, vals in paper.TABLE1[col12].items()), ""]
        lines += _table1_beside_papers(by, labels1, col12)

    def length_table(table: str, labels: list[str], ref: dict) -> None:
        lines.append("| row | " + " | ".join(f"T={L} measured | T={L} paper" for L in paper.LENGTHS) + " |")
        lines.append("|---" * (1 + 2 * len(paper.LENGTHS)) + "|")
        for lab in labels:
            runs = by(table, lab)
            cells = []
            for i, L in enumerate(paper.LENGTHS):
                rows = [r for pr in runs for r in _rows(pr) if r.length == L]
                m = _agg([r.metrics["e_mesh"] for r in rows])[0]
                s = _agg([r.metrics["e_mesh_std"] for r in rows])[0]
                key = float(lab.split("=")[1]) if table == "4" else lab
                pr_ = ref.get(key)
                cells += [_fmt(m, s), _fmt(*pr_[i]) if pr_ else "—"]
            lines.append(f"| {lab} | " + " | ".join(cells) + " |")
        lines.append("")

    labels3 = list(dict.fromkeys(p.label for p in plan.runs if p.table == "3"))
    if labels3:
        dec = next((p.config.decoder for p in plan.runs if p.table == "3"), "")
        lines += [f"## Table 3 — generator ablation (decoded with `{dec}`), per-vertex error", ""]
        length_table("3", labels3, paper.TABLE3[col3])
    labels4 = list(dict.fromkeys(p.label for p in plan.runs if p.table == "4"))
    if labels4:
        lines += ["## Table 4 — α of the temporal loss (FC-LSTM), per-vertex error", ""]
        length_table("4", labels4, paper.TABLE4)

    lines += zou_sections(plan, by, dataset)
    if any(p.table == "Z5" for p in plan.runs):
        lines += ["## Zou et al. 2023 Table 5 — landmark-guided decoders, 4-fold identity cross-validation", "",
                  "The paper's column is its identity split on CoMA; its \"CoMA\" row is compared with `neural3dmm`, "
                  "its \"Ours (w/o attention)\" row with `lgmd-noattn`.", ""]
        decoder_table("Z5", paper.ZOU_TABLE5["Identity split"], "identity split, CoMA", 2)
    if any(p.table == "P" for p in plan.runs):
        lines += potamias_section(plan, by)

    lines += cost_section(plan)
    claims = claims_for(plan, by)
    lines += ["## Claims", "", "A claim that A beats B holds only where the paired bootstrap 95 % interval of the "
              "difference (A − B, per test item, pooled over seeds and settings) excludes zero in the claimed "
              "direction. A claim that A is close to B holds where that interval lies within the stated margin, is "
              "contradicted where it lies wholly outside it, and is undecided otherwise.", "",
              "| claim | verdict | effect A − B | 95 % CI |", "|---|---|---|---|"]
    lines += [f"| {c.text} | **{c.verdict}** | {c.effect} | {c.ci} |" for c in claims]
    return "\n".join(lines) + "\n"


def cost_section(plan: Plan) -> list[str]:
    """Where the time went: per distinct run, its wall and CPU time (this process, every thread) and the
    training and evaluation seconds its rows report (training is ~0 where a component came from the store)."""
    seen: dict[str, list[PlannedRun]] = {}
    for p in plan.runs:
        if p.result:
            seen.setdefault(p.config.run_id, []).append(p)
    if not seen:
        return []
    out = ["## Cost per run", "", "Wall time on a shared machine is no measure of cost; CPU time is (process time "
           "of the run, all threads). Training seconds are wall seconds of fitting (≈ 0 where the component came "
           "from the store, trained by an earlier run); evaluation seconds are wall seconds of generating and "
           "scoring.", "", "| tables | run | CPU (s) | wall (s) | training (s) | evaluation (s) |",
           "|---|---|---|---|---|---|"]
    cpu_total = wall_total = 0.0
    for run_id, prs in seen.items():
        rec = prs[0].result.record
        rows = [r for r in _rows(prs[0]) if not r.reference and r.fold is None]
        cpu, wall = rec.get("cpu_seconds"), rec.get("wall_seconds")
        cpu_total += cpu or 0.0
        wall_total += wall or 0.0
        train = max((r.train_seconds for r in rows), default=0.0)
        ev = sum(r.eval_seconds for r in rows)
        what = f"{prs[0].config.protocol} {prs[0].label}"
        out.append(f"| {', '.join(dict.fromkeys(p.table for p in prs))} | {what} | {_fmt(cpu, digits=0)} | "
                   f"{_fmt(wall, digits=0)} | {train:.0f} | {ev:.0f} |")
    out += ["", f"Total over {len(seen)} runs: CPU {cpu_total / 60:.1f} min, wall {wall_total / 60:.1f} min "
            "(runs reused from an earlier invocation count with their original times).", ""]
    return out


def _table1_beside_papers(by: Callable[[str, str], list[PlannedRun]], labels1: list[str], col12: str) -> list[str]:
    """FC-4DFS Table 1 rows (E_lm, E_mesh, CA) beside the measured values."""
    def mean(label: str, metric: str) -> str:
        rows = [r for pr in by("1", label) for r in _rows(pr) if r.pooled]
        return _fmt(_agg([r.metrics.get(metric, float("nan")) for r in rows])[0])

    # FC-4DFS computes CA on the decoded meshes: its CA column is compared with ca_mesh
    out = ["### Table 1 beside FC-4DFS (measured / paper; CA on decoded meshes)", "",
           "| run | paper row | E_lm | E_mesh | CA (mesh) |", "|---|---|---|---|---|"]
    for label, row in paper.TABLE1_RUNS.items():
        ref = paper.TABLE1[col12].get(row)
        if label in labels1 and ref:
            out.append(f"| {label} | {row} | " + " | ".join(
                f"{mean(label, m)} / {'—' if v is None else v}" for m, v in zip(("e_lm", "e_mesh", "ca_mesh"), ref)) + " |")
    return out + [""]


def _where(runs: list[PlannedRun], key: str) -> list[ResultRow]:
    """The rows of ``runs`` whose per-item key (:attr:`ResultRow.key`) is ``key``, over seeds."""
    return [r for pr in runs for r in _rows(pr) if r.key == key and r.fold is None]


def _cell(rows: list[ResultRow], metric: str, ref: float | None | str = "", digits: int = 2) -> str:
    """``measured`` (mean ± std over seeds when several) or ``measured / paper`` where ``ref`` is given."""
    m, sd = _agg([r.metrics.get(metric, float("nan")) for r in rows])
    measured = _fmt(m, sd if len(rows) > 1 else None, digits)
    if ref == "":
        return measured
    return f"{measured} / {'—' if ref is None else ref}"


def zou_sections(plan: Plan, by: Callable[[str, str], list[PlannedRun]], dataset: str) -> list[str]:
    """Zou et al. 2023 Tables 1-4 (label control, text control, filling, geometry-adaptive generation)
    beside the paper's CoMA numbers: accuracy (%) of the landmark-sequence classifier and FID on its
    features, plus the suite's other landmark metrics where they say something the paper's do not."""
    col = paper.zou_column_for(dataset) or "CoMA"
    out: list[str] = []
    if not any(p.table.startswith("Z") and p.table != "Z5" for p in plan.runs):
        return out
    out += ["## Zou et al. 2023 Tables 1-4 — landmark sequences on held-out identities", "",
            "CA (%) and FID under the suite's landmark-sequence classifier (Zou et al. §5: one LSTM layer + a "
            "linear layer, FID on its features), trained on the real training sequences; cells are "
            f"measured / paper (CoMA). Every test sequence is time-normalised to {ZOU_LENGTH} frames, as the "
            "paper interpolates its sequences (§4). The paper scores the enriched-text task (Table 2) and Table 4 with an "
            "order-sensitive classifier (\"type S\": label and N2E/E2N); the suite has one classifier (type I) "
            "for every table, so those two ground-truth rows differ from the paper's by construction. The "
            "suite computes no FID for the real test sequences (the paper's ground-truth FID is test vs "
            "training).", ""]
    zou1 = paper.ZOU_TABLE1[col]
    rows1 = {**paper.ZOU_TABLE1_GENERATORS, **{k: v[2] for k, v in ZOU_TABLE1_VARIANTS.items()}}
    labels = [g for g in rows1 if by("Z1", g)]
    if labels:
        gt = _where(by("Z1", labels[0]), "gt")
        out += [f"### Table 1 — label control (e2e, decoded with `{ZOU_TABLE1_DECODER}`)", "",
                "| generator | paper row | CA | FID | diversity | smoothness | E_lm (mm) |", "|---|---|---|---|---|---|---|",
                f"| gt | Ground truth | {_cell(gt, 'ca', zou1['Ground truth'][0])} | — / {zou1['Ground truth'][1]} "
                "| — | — | — |"]
        for g in labels:
            row = rows1[g]
            rs = _where(by("Z1", g), ZOU_TABLE1_SETTING)
            out.append(f"| {g} | {row} | {_cell(rs, 'ca', zou1[row][0])} | {_cell(rs, 'fid', zou1[row][1])} | "
                       f"{_cell(rs, 'diversity', digits=3)} | {_cell(rs, 'smoothness', digits=3)} | "
                       f"{_cell(rs, 'e_lm', digits=3)} |")
        out.append("")
    runs2 = by("Z2", "ddpm")
    if runs2:
        z2 = paper.ZOU_TABLE2
        gt = _where(runs2, "gt")
        raw, ent = _where(runs2, "raw-text"), _where(runs2, "enriched-text")
        lab = _where(by("Z2", ZOU_LABEL_ROW), ZOU_PROTOCOLS["Z4"])
        out += ["### Table 2 — text control (`text-control`, geometry-adaptive from each test face)", "",
                "| row | CA (raw text) | FID (raw text) | CA (enriched text) | FID (enriched text) |", "|---|---|---|---|---|",
                f"| Ground truth | {_cell(gt, 'ca', z2['Ground truth']['raw'][0])} | — / {z2['Ground truth']['raw'][1]} | "
                f"{_cell(gt, 'ca', z2['Ground truth']['enriched'][0])} | — / {z2['Ground truth']['enriched'][1]} |",
                f"| MotionClip (not in the suite) | — / {z2['MotionClip']['raw'][0]} | — / {z2['MotionClip']['raw'][1]} | "
                f"— / {z2['MotionClip']['enriched'][0]} | — / {z2['MotionClip']['enriched'][1]} |",
                f"| ddpm (Ours) | {_cell(raw, 'ca', z2['Ours']['raw'][0])} | {_cell(raw, 'fid', z2['Ours']['raw'][1])} | "
                f"{_cell(ent, 'ca', z2['Ours']['enriched'][0])} | {_cell(ent, 'fid', z2['Ours']['enriched'][1])} |"]
        if lab:
            out.append(f"| ddpm, label control (beside; paper: Table 1) | {_cell(lab, 'ca', zou1['Ours'][0])} | "
                       f"{_cell(lab, 'fid', zou1['Ours'][1])} | | |")
        texts = sorted({t for r in raw + ent for t in r.details.get("texts", [])})
        out += ["", f"{len(texts)} distinct descriptions were generated from"
                + (f", e.g. {', '.join(repr(t) for t in texts[:3])}." if texts else "."), ""]
    runs3 = by("Z3", "ddpm")
    if runs3:
        z3 = paper.ZOU_TABLE3
        gt = _where(runs3, "gt")
        out += ["### Table 3 — expression filling (`filling`)", "",
                "| case | hidden frames | mean imputation CA | mean imputation FID | mean imputation E_lm hidden (mm) "
                "| ddpm CA | ddpm FID | ddpm E_lm hidden (mm) |", "|---|---|---|---|---|---|---|---|"]
        for mode in (m for m in z3 if _where(runs3, m)):
            ours, base = _where(runs3, mode), _where(runs3, f"{mode}/{MEAN_IMPUTATION}")
            frac = ours[0].details.get("hidden_fraction")
            out.append(f"| {mode.upper()} | {'—' if frac is None else f'{frac:.0%}'} | "
                       f"{_cell(base, 'ca', z3[mode]['mean-imputation'][0])} | "
                       f"{_cell(base, 'fid', z3[mode]['mean-imputation'][1])} | {_cell(base, 'e_lm_hidden', digits=3)} | "
                       f"{_cell(ours, 'ca', z3[mode]['ddpm'][0])} | {_cell(ours, 'fid', z3[mode]['ddpm'][1])} | "
                       f"{_cell(ours, 'e_lm_hidden', digits=3)} |")
        out += ["", f"Ground truth: CA {_cell(gt, 'ca', zou1['Ground truth'][0])}, FID — / {zou1['Ground truth'][1]}. "
                "The paper draws the known part's length (FFE/FFB: 10-30 of 40 frames; FFM: 5-15 at each end); "
                "the suite hides a fixed fraction of every sequence, the mean of those draws.", ""]
    runs4 = by("Z4", "ddpm")
    if runs4:
        z4 = paper.ZOU_TABLE4
        gt, ours = _where(runs4, "gt"), _where(runs4, "geometry-adaptive")
        out += ["### Table 4 — geometry-adaptive generation (`geometry-adaptive`)", "",
                "| row | CA | FID | E_lm (mm) | smoothness |", "|---|---|---|---|---|",
                f"| Ground truth | {_cell(gt, 'ca', z4['Ground truth'][0])} | — / {z4['Ground truth'][1]} | — | — |",
                f"| ddpm (Geometry-adaptive) | {_cell(ours, 'ca', z4['Geometry-adaptive'][0])} | "
                f"{_cell(ours, 'fid', z4['Geometry-adaptive'][1])} | {_cell(ours, 'e_lm', digits=3)} | "
                f"{_cell(ours, 'smoothness', digits=3)} |", ""]
    out += ["FID is a set statistic (no per-item values), so the claims below pair CA only.", ""]
    return out


def potamias_section(plan: Plan, by: Callable[[str, str], list[PlannedRun]]) -> list[str]:
    """Potamias et al. Table 2 (per-expression per-vertex error of ``potamias`` and its blendshape baseline, e2e on
    held-out identities) beside the paper's totals, plus the control-adherence and classification columns."""
    rows = {pipe: [r for pr in by("P", pipe) for r in _rows(pr) if r.pooled] for pipe in POTAMIAS_ROWS.values()}
    labels = sorted({k for rs in rows.values() for r in rs for k in r.details.get("e_mesh", {}).get("per_label", {})})
    lines = ["## Potamias et al. 2020 Table 2 — per-expression per-vertex error (mm), e2e on held-out identities", "",
             "The paper's totals are on 4DFAB (six expressions, 27 test subjects); its per-expression columns are "
             "4DFAB's expressions, so only the totals are set beside the measured ones. The pipelines are told each "
             "test sequence's measured onset/apex/offset (the paper's protocol). The per-frame error curve "
             "(Fig. 5) is `fig5-frame-error.png` beside this report. ± is the std over seeds (none with one seed).", "",
             "| model | " + " | ".join(labels) + " | total | paper total |", "|---" * (len(labels) + 3) + "|"]
    for row, pipe in POTAMIAS_ROWS.items():
        rs = rows[pipe]
        cells = [_fmt(*_agg([r.details.get("e_mesh", {}).get("per_label", {}).get(lab, float("nan")) for r in rs]))
                 for lab in labels]
        total = _fmt(*_agg([r.metrics.get("e_mesh", float("nan")) for r in rs]))
        lines.append(f"| {row} (`{pipe}`) | " + " | ".join(cells) + f" | {total} | {paper.POTAMIAS_TABLE2[row]:.2f} |")
    metrics = ["e_lm", "ca", "ca_mesh", "fid", "timing_err", "intensity_r2", "intensity_slope_err"]
    lines += ["", "| model | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for row, pipe in POTAMIAS_ROWS.items():
        rs = rows[pipe]
        lines.append(f"| {row} (`{pipe}`) | " + " | ".join(
            _fmt(*_agg([r.metrics.get(m, float("nan")) for r in rs])) for m in metrics) + " |")
    gt = [r for pipe in POTAMIAS_ROWS.values() for pr in by("P", pipe) for r in _rows(pr) if r.reference][:1]
    return lines + [""] + potamias_table3({**{row: rows[pipe] for row, pipe in POTAMIAS_ROWS.items()},
                                           "Ground truth": gt})


def potamias_table3(rows: dict[str, list[ResultRow]]) -> list[str]:
    """Potamias et al. Table 3: per-class precision / recall / F1 of the mesh classifier (``ca_mesh``'s
    per-class report, mean over seeds) for each model's rows, and the macro mean as "Total" beside the
    paper's Total row."""
    def per_class(rs: list[ResultRow]) -> dict[str, dict[str, float]]:
        reports = [r.details.get("ca_mesh", {}).get("per_class", {}) for r in rs]
        labs = sorted({lab for rep in reports for lab in rep})
        return {lab: {k: float(np.mean([rep[lab][k] for rep in reports if lab in rep]))
                      for k in ("precision", "recall", "f1")} for lab in labs}

    tables = {name: per_class(rs) for name, rs in rows.items()}
    labels = sorted({lab for t in tables.values() for lab in t})
    if not labels:
        return []
    names = list(tables)
    out = ["## Potamias et al. 2020 Table 3 — per-class precision / recall / F1 of their classifier", "",
           "Their classifier: 64 PCA coefficients per frame of the training meshes, frames concatenated, three fully "
           "connected layers (`MeshClassifier(design=\"potamias\")`, trained on the generator-training identities "
           "through the component store); held-out identities. Total: macro mean over the classes (paper: 4DFAB, six "
           "expressions).", "",
           "| class | " + " | ".join(f"{n} Pre | {n} Rec | {n} F1" for n in names) + " |",
           "|---" * (1 + 3 * len(names)) + "|"]
    keys = ("precision", "recall", "f1")
    for lab in labels:
        out.append(f"| {lab} | " + " | ".join(_fmt(tables[n][lab][k], digits=2) if lab in tables[n] else "—"
                                              for n in names for k in keys) + " |")
    total = {n: [float(np.mean([v[k] for v in tables[n].values()])) if tables[n] else float("nan") for k in keys]
             for n in names}
    out.append("| **Total** | " + " | ".join(_fmt(v, digits=2) for n in names for v in total[n]) + " |")
    out.append("| paper Total | " + " | ".join(
        " | ".join(f"{v:.2f}" for v in paper.POTAMIAS_TABLE3_TOTAL[n]) if n in paper.POTAMIAS_TABLE3_TOTAL
        else "— | — | —" for n in names) + " |")
    return out + [""]


def potamias_figure(plan: Plan, path: Path) -> Path | None:
    """Fig. 5 of Potamias et al.: the mean per-vertex error (mm) of each frame, on normalised time, of both
    pipelines (mean over seeds); None when neither ran."""
    curves = {}
    for pipe in POTAMIAS_ROWS.values():
        for pr in plan.runs:
            if pr.table == "P" and pr.label == pipe and pr.result:
                for r in _rows(pr):
                    curve = r.details.get("e_mesh", {}).get("curve") if r.pooled else None
                    if curve:
                        curves.setdefault(pipe, []).append(curve)
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for pipe, cs in curves.items():
        t = np.asarray(cs[0]["t"])
        ax.plot(t, np.mean([c["mean"] for c in cs], axis=0), label=pipe)
    ax.set_xlabel("normalised time (onset → apex → offset)")
    ax.set_ylabel("mean per-vertex error (mm)")
    ax.set_title("Per-frame error (Potamias et al. Fig. 5)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def claims_for(plan: Plan, by: Callable[[str, str], list[PlannedRun]]) -> list[Claim]:
    out: list[Claim] = []
    lengths = [f"length={L}" for L in paper.LENGTHS]

    def claim(text: str, ta: str, la: str, tb: str, lb_: str, metric: str, direction: str,
              settings: list[str] | None = None) -> None:
        if not (plan.asked(ta) or plan.asked(tb)):
            return
        ra, rb = by(ta, la), by(tb, lb_)
        if not ra or not rb:
            out.append(Claim(text, "not measured", "—", "—"))
            return
        a, b = _pair(ra, rb, metric, settings)
        out.append(judge(text, a, b, direction))

    claim("potamias beats the PCA blendshape baseline, E_mesh (Potamias et al. Table 2)", "P", "potamias", "P",
          "potamias-pca", "e_mesh", "lower")
    claim("MIADNet beats S2D on unseen identities (Table 2)", "2", "miadnet", "2", "s2d", "e_mesh", "lower")
    claim("S2D beats PCA-3DMM (Table 2)", "2", "s2d", "2", "pca", "e_mesh", "lower")
    claim("PCA-3DMM beats Neural3DMM (Table 2)", "2", "pca", "2", "neural3dmm", "e_mesh", "lower")
    claim("Both MIADNet parts together beat landmark decomposition alone (Table 2)", "2", "miadnet", "2", "s2d+lm-n",
          "e_mesh", "lower")
    claim("Both MIADNet parts together beat the identity path alone (Table 2)", "2", "miadnet", "2", "s2d+mesh-n",
          "e_mesh", "lower")
    for L in lengths:
        claim(f"FC-LSTM beats LSTM at {L} (Table 3, both with temporal loss)", "3", "lstm+freq+loss-temp", "3",
              "lstm+loss-temp", "e_mesh", "lower", [L])
    for L in lengths:
        claim(f"LSTM beats MLP at {L} (Table 3)", "3", "lstm", "3", "mlp", "e_mesh", "lower", [L])
    claim("Temporal loss helps the LSTM (Table 3)", "3", "lstm+loss-temp", "3", "lstm", "e_mesh", "lower", lengths)
    claim("Temporal loss helps the FC-LSTM (Table 3)", "3", "lstm+freq+loss-temp", "3", "lstm+freq", "e_mesh",
          "lower", lengths)
    for a in ALPHAS:
        if a != DEFAULT_ALPHA:
            claim(f"α = 0.3 beats α = {a:g} (Table 4)", "4", "alpha=0.3", "4", f"alpha={a:g}", "e_mesh", "lower",
                  lengths)
    claim("FC-LSTM+MIADNet beats FC-LSTM+S2D end to end, E_mesh (Table 1)", "1", "fc_lstm+miadnet", "1",
          "fc_lstm+s2d", "e_mesh", "lower")
    claim("FC-LSTM beats LM-4DGAN end to end, E_lm (Table 1)", "1", "fc_lstm+miadnet", "1", "lm4dgan+miadnet",
          "e_lm", "lower")
    claim("FC-LSTM beats LM-4DGAN end to end, E_mesh (Table 1)", "1", "fc_lstm+miadnet", "1", "lm4dgan+miadnet",
          "e_mesh", "lower")
    claim("FC-LSTM beats LM-4DGAN end to end, CA on meshes (Table 1)", "1", "fc_lstm+miadnet", "1", "lm4dgan+miadnet",
          "ca_mesh", "higher")
    claim("The DDPM beats LM-4DGAN end to end, CA (Table 1 runs, both with MIADNet)", "1", "ddpm+miadnet", "1",
          "lm4dgan+miadnet", "ca", "higher")
    for metric, direction in (("e_lm", "lower"), ("e_mesh", "lower"), ("ca_mesh", "higher")):
        claim(f"FC-LSTM beats Motion3DGAN end to end, {metric} (FC-4DFS Table 1, both with S2D)", "1", "fc_lstm+s2d",
              "1", "motion3dgan+s2d", metric, direction)
    return out + zou_claims(plan, by)


def judge_close(text: str, a: np.ndarray, b: np.ndarray, margin: float, seed: int = 0) -> Claim:
    """Claim 'A is close to B': holds where the paired bootstrap 95 % interval of A - B lies within
    ``+- margin``, is contradicted where it lies wholly outside, and is undecided otherwise."""
    from fc4dfs.benchmark.stats import paired_bootstrap

    if len(a) == 0:
        return Claim(text, "not measured", "—", "—")
    r = paired_bootstrap(a, b, n_boot=2000, seed=seed)
    if -margin < r["lo"] and r["hi"] < margin:
        verdict = "holds"
    elif r["lo"] > margin or r["hi"] < -margin:
        verdict = "contradicted"
    else:
        verdict = "undecided"
    return Claim(f"{text} (margin ± {margin:g})", verdict, f"{r['diff']:+.4g}",
                 f"[{r['lo']:+.4g}, {r['hi']:+.4g}] (n={r['n']})")


def _pair_keys(runs_a: list[PlannedRun], key_a: str, runs_b: list[PlannedRun], key_b: str,
               metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-item values of row ``key_a`` of ``runs_a`` and row ``key_b`` of ``runs_b`` (per_item.json keys, e.g.
    ``ffm`` and ``ffm/mean-imputation``, or ``gt`` for the reference row), paired by item and seed."""
    a_vals, b_vals = [], []
    for ra, rb in zip(sorted(runs_a, key=lambda r: r.config.seed), sorted(runs_b, key=lambda r: r.config.seed)):
        da = dict((k, v) for k, v in _per_item(ra).get(key_a, {}).get(metric, []))
        db = dict((k, v) for k, v in _per_item(rb).get(key_b, {}).get(metric, []))
        for k in sorted(set(da) & set(db)):
            a_vals.append(da[k])
            b_vals.append(db[k])
    return np.asarray(a_vals), np.asarray(b_vals)


def zou_claims(plan: Plan, by: Callable[[str, str], list[PlannedRun]]) -> list[Claim]:
    """Zou et al. 2023's claims, each on per-item CA (Tables 1-4) or per-vertex error (Table 5)."""
    out: list[Claim] = []

    def claim(text: str, ta: str, la: str, key_a: str, tb: str, lb_: str, key_b: str, metric: str,
              direction: str | None) -> None:
        """``direction`` "higher"/"lower": A beats B; None: A is close to B (CA, ``CLOSE_CA_POINTS``)."""
        if not (plan.asked(ta) or plan.asked(tb)):
            return
        ra, rb = by(ta, la), by(tb, lb_)
        if not ra or not rb:
            out.append(Claim(text, "not measured", "—", "—"))
            return
        a, b = _pair_keys(ra, key_a, rb, key_b, metric)
        out.append(judge(text, a, b, direction) if direction else judge_close(text, a, b, CLOSE_CA_POINTS))

    for gen, name in (("actor", "ACTOR"), ("action2motion", "Action2Motion"), ("motion3dgan", "Motion3DGAN")):
        claim(f"The DDPM beats {name}, CA (Zou et al. Table 1)", "Z1", "ddpm", ZOU_TABLE1_SETTING, "Z1", gen,
              ZOU_TABLE1_SETTING, "ca", "higher")
    t1, t2, t3, t4 = (paper.ZOU_TABLE1["CoMA"], paper.ZOU_TABLE2, paper.ZOU_TABLE3, paper.ZOU_TABLE4)
    claim(f"The DDPM's CA is close to the ground truth's (Zou et al. Table 1: {t1['Ours'][0]} vs "
          f"{t1['Ground truth'][0]} %)", "Z1", "ddpm", ZOU_TABLE1_SETTING,
          "Z1", "ddpm", "gt", "ca", None)
    for task in ("raw text", "enriched text") if plan.asked("Z2") else ():
        out.append(Claim(f"The DDPM beats MotionClip, CA ({task}) (Zou et al. Table 2)", "not measured (MotionClip "
                         "is not in the suite)", "—", "—"))
    claim(f"Raw-text control's CA is close to label control's (Zou et al. Tables 1-2: {t2['Ours']['raw'][0]} vs "
          f"{t1['Ours'][0]} %)", "Z2", "ddpm", "raw-text", "Z2", ZOU_LABEL_ROW, ZOU_PROTOCOLS["Z4"], "ca", None)
    for mode in t3:
        claim(f"Filling beats mean imputation, CA, {mode.upper()} (Zou et al. Table 3)", "Z3", "ddpm", mode, "Z3",
              "ddpm", f"{mode}/{MEAN_IMPUTATION}", "ca", "higher")
    claim(f"FFM filling's CA is close to the ground truth's (Zou et al. §5.3: {t3['ffm']['ddpm'][0]} vs "
          f"{t1['Ground truth'][0]} %)", "Z3", "ddpm", "ffm",
          "Z3", "ddpm", "gt", "ca", None)
    claim(f"Geometry-adaptive CA is close to the ground truth's (Zou et al. Table 4: {t4['Geometry-adaptive'][0]} vs "
          f"{t4['Ground truth'][0]} %)", "Z4", "ddpm",
          "geometry-adaptive", "Z4", "ddpm", "gt", "ca", None)
    for a, b, text in (("lgmd", "s2d", "lgmd beats S2D on unseen identities"),
                       ("lgmd", "lgmd-noattn", "The cross-attention helps: lgmd beats lgmd w/o attention"),
                       ("s2d", "neural3dmm", "S2D beats the CoMA-style autoencoder"),
                       ("neural3dmm", "linear", "The CoMA-style autoencoder beats Linear")):
        claim(f"{text} (Zou et al. Table 5)", "Z5", a, "pooled", "Z5", b, "pooled", "e_mesh", "lower")
    return out


def reproduce(dataset: str, budget: str, out_dir: Path, report_dir: Path, seeds: list[int], device: str = "cpu",
              dataset_options: dict[str, Any] | None = None, tables: tuple[str, ...] = TABLES,
              progress: bool = True, retrain_classifier: bool = False, reg: Registry | None = None,
              log: Callable[[str], None] = print, leaderboard: Path | None = None, executor: Any = None,
              threads: int | None = None) -> Path:
    """Plan, run (resuming finished runs) on ``executor`` (default: local) and report; returns the report's path.

    Leaderboard rows go to ``leaderboard`` (default ``report_dir / "leaderboard.csv"``); ``threads`` is
    each run's torch thread count (``RunConfig.threads``).
    """
    reg = reg or global_registry()
    t0 = time.perf_counter()
    plan = make_plan(reg, dataset, budget, seeds, device, dataset_options or {}, tables)
    if threads:
        plan.runs = [PlannedRun(p.table, p.label, replace(p.config, threads=threads)) for p in plan.runs]
    for m in plan.missing:
        log(f"missing: {m}")
    report_dir.mkdir(parents=True, exist_ok=True)
    run_plan(plan, out_dir, leaderboard or report_dir / "leaderboard.csv", progress=progress,
             retrain_classifier=retrain_classifier, reg=reg, log=log, executor=executor)
    wall = time.perf_counter() - t0
    report = build_report(plan, dataset, budget, wall)
    potamias_figure(plan, report_dir / "fig5-frame-error.png")
    path = report_dir / f"report-{budget}.md"
    atomic_write_text(path, report)
    atomic_write_json(report_dir / f"report-{budget}.json", {
        "dataset": dataset, "budget": budget, "seeds": seeds, "wall_seconds": wall, "missing": plan.missing,
        "runs": [{"table": p.table, "label": p.label, "run_id": p.config.run_id, "seed": p.config.seed,
                  "status": "ok" if p.result else "failed", "error": p.error} for p in plan.runs]})
    return path
