"""The CSV leaderboard: rows derived from run records, appended safely, aggregated and ranked.

Appending takes a file lock, re-reads the file, merges the new rows (a row already present —
same ``row_id`` — is not duplicated) and replaces the file atomically, so concurrent runs lose
no row and readers never see a torn file. A malformed existing file is reported, never
overwritten.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from filelock import FileLock

from fc4dfs.benchmark.errors import UserError
from fc4dfs.datasets.storage import atomic_write_text, stable_hash

#: Fixed leading columns (ARCHITECTURE.md's schema); metric columns follow as ``<metric>`` and
#: ``<metric>_std``.
BASE_COLUMNS = [
    "row_id", "run_id", "utc_time", "status", "protocol", "setting", "dataset", "dataset_hash",
    "dataset_version", "generator", "generator_version", "generator_options", "decoder",
    "decoder_version", "decoder_options", "budget", "budget_overrides", "protocol_options", "protocol_version",
    "seed", "fold", "n_items", "train_seconds",
    "eval_seconds", "device", "package_version", "torch_version", "git_commit", "config_hash", "error",
    "evaluator", "fid_features",
]
REQUIRED = {"row_id", "run_id", "protocol", "dataset", "status"}
#: what makes two rows the same configuration: only rows equal in all of these (differing in seed,
#: and in fold for per-fold rows) are averaged and ranked together
CONFIG_COLUMNS = ["setting", "generator", "generator_options", "decoder", "decoder_options", "budget",
                  "budget_overrides", "protocol_options"]
#: what makes rows comparable at all: rows differing in any of these are never in one table
#: (``evaluator`` is the content hash of the frozen classifiers behind CA, CA (mesh) and FID)
TABLE_COLUMNS = ["protocol", "dataset", "dataset_hash", "evaluator", "budget", "budget_overrides",
                 "protocol_options"]
#: two-sided 95 % Student-t quantiles by degrees of freedom (seeds - 1), for the CI over seeds
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}
#: the mark of a row whose 95 % CI over seeds overlaps the rank-1 row's on the primary metric
OVERLAP_MARK = "≈"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class LeaderboardError(UserError):
    """The leaderboard file is malformed or cannot be updated."""


def neutralise(value: Any) -> Any:
    """Make text a spreadsheet would execute (``=``, ``+``, ``-``, ``@`` …) inert with a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
            return value  # a plain negative number written as text
        except ValueError:
            return "'" + value
    return value


def row_id(row: dict[str, Any]) -> str:
    key = {k: row.get(k) for k in ("run_id", "protocol", "setting", "generator", "generator_options",
                                   "decoder", "decoder_options", "fold", "seed")}
    return stable_hash(key, 16)


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read and validate an existing leaderboard; raise LeaderboardError naming the problem."""
    if not path.exists() or path.stat().st_size == 0:
        return [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LeaderboardError(f"leaderboard {path} is not UTF-8 text ({e}); not touching it") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as e:
        raise LeaderboardError(f"leaderboard {path} is not valid CSV ({e}); not touching it") from None
    header = rows[0] if rows else []
    missing = REQUIRED - set(header)
    if missing:
        raise LeaderboardError(f"leaderboard {path} is malformed: header lacks {sorted(missing)}; "
                               "not touching it (move it aside or pass another --leaderboard)")
    if len(set(header)) != len(header):
        raise LeaderboardError(f"leaderboard {path} is malformed: duplicate column names; not touching it")
    out = []
    for i, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != len(header):
            raise LeaderboardError(f"leaderboard {path} is malformed: line {i} has {len(r)} fields, "
                                   f"header has {len(header)}; not touching it")
        out.append(dict(zip(header, r)))
    return header, out


def append_rows(path: str | Path, new_rows: Iterable[dict[str, Any]]) -> int:
    """Append rows to the CSV at ``path`` under a lock; returns how many were new or replaced.

    A row whose ``row_id`` is already there is skipped, unless its version columns differ: then the run
    was redone with new code and its row replaces the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new_rows = [dict(r) for r in new_rows]
    for r in new_rows:
        r.setdefault("row_id", row_id(r))
    with FileLock(str(path) + ".lock", timeout=120):
        header, rows = read_rows(path)
        seen = {r["row_id"]: r for r in rows}
        newer = {r["row_id"] for r in new_rows if r["row_id"] in seen and _newer_versions(seen[r["row_id"]], r)}
        rows = [r for r in rows if r["row_id"] not in newer]
        added = [r for r in new_rows if r["row_id"] not in seen or r["row_id"] in newer]
        if not added:
            return 0
        columns = list(header) or list(BASE_COLUMNS)
        for c in BASE_COLUMNS:
            if c not in columns:
                columns.append(c)
        for r in added:
            for c in r:
                if c not in columns:
                    columns.append(c)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})
        for r in added:
            w.writerow({c: _cell(r.get(c, "")) for c in columns})
        atomic_write_text(path, buf.getvalue())
    return len(added)


#: columns whose change means a run was redone with new code (its rows replace the old ones)
VERSION_COLUMNS = ("protocol_version", "dataset_version", "generator_version", "decoder_version")


def _newer_versions(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(str(old.get(c, "")) != str(_cell(new.get(c, ""))) for c in VERSION_COLUMNS if c in new)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(round(v, 6))
    if isinstance(v, (dict, list)):
        v = json.dumps(v, sort_keys=True)
    return neutralise(v) if isinstance(v, str) else v


# --------------------------------------------------------------------------- aggregation
@dataclass
class RankedTable:
    protocol: str
    dataset: str
    dataset_hash: str
    table: Any  # pandas.DataFrame
    metrics: list[str]
    notes: list[str]
    evaluator: str = ""
    budget: str = ""  #: the budget label of every row (name, overrides, protocol options)
    primary: str = ""
    direction: str = ""
    #: what the table's "±" is: "95 % CI over seeds" or "" (single runs: no ±)
    pm: str = ""

    def legend(self, units: dict[str, str] | None = None, directions: dict[str, str] | None = None) -> list[str]:
        """Lines naming the primary metric, each metric's unit and direction, and what "±" is."""
        units, directions = units or {}, directions or {}
        out = []
        if self.primary:
            out.append(f"ranked by {self.primary} ({self.direction or directions.get(self.primary, 'lower')} "
                       "is better) within each setting")
        cols = []
        for m in self.metrics:
            arrow = {"lower": "↓", "higher": "↑"}.get(directions.get(m, ""), "")
            unit = units.get(m, "")
            cols.append(f"{m}{' [' + unit + ']' if unit else ''}{' ' + arrow if arrow else ''}")
        if cols:
            out.append("metrics (↓ lower is better, ↑ higher): " + ", ".join(cols))
        if self.pm:
            single = "runs" in self.table and bool((self.table["runs"] == 1).any())
            out.append(f"± is the {self.pm} (Student t, runs = seeds{'; none for a single run' if single else ''}); "
                       f"{OVERLAP_MARK} after a rank: that row's CI on the primary metric overlaps the rank-1 row's "
                       "(no clear difference)")
        else:
            out.append("one run per configuration: no ± (spread over seeds needs --seeds)")
        if self.evaluator:
            out.append(f"CA, CA (mesh) and FID scored by evaluator {self.evaluator}")
        return out


def load_frame(path: str | Path):
    """The leaderboard as a DataFrame of strings ("" for an empty cell; :func:`rank` parses the metrics)."""
    path = Path(path)
    if not path.exists():
        raise LeaderboardError(f"no leaderboard at {path}; run `fc4dfs-bench run ...` first")
    header, rows = read_rows(path)
    return _frame(rows, header)


def frame_of(rows: Iterable[dict[str, Any]]):
    """Rows as :func:`append_rows` would write them (e.g. a run record's ``rows_flat``), as the DataFrame
    :func:`load_frame` would read back, without a file."""
    rows = [{k: str(_cell(v)) for k, v in r.items()} for r in rows]
    return _frame(rows, list(dict.fromkeys(k for r in rows for k in r)))


def _frame(rows: list[dict[str, str]], header: list[str]):
    import pandas as pd

    df = pd.DataFrame(rows, columns=header, dtype=str).fillna("")
    for c in BASE_COLUMNS:  # files written before a column existed
        if c not in df:
            df[c] = ""
    return df


def metric_columns(df) -> list[str]:
    base = set(BASE_COLUMNS)
    return [c for c in df.columns if c not in base and not c.endswith("_std")]


def ci95(values: Any) -> float:
    """Half-width of the two-sided 95 % Student-t confidence interval of the mean of ``values``
    (sample std, ``ddof=1``); NaN for fewer than two values."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return float("nan")
    dof = len(v) - 1
    t = _T95[max(k for k in _T95 if k <= dof)] if dof <= 30 else 1.960
    return float(t * v.std(ddof=1) / math.sqrt(len(v)))


def rank(df, directions: dict[str, str], primary: dict[str, tuple[str, str] | str] | None = None,
         protocol: str | None = None, dataset: str | None = None, folds: bool = False) -> list[RankedTable]:
    """Aggregate the mean and 95 % CI over seeds per configuration and setting, ranked per table.

    A table holds only comparable rows: one protocol, dataset version, evaluator (the content hash
    of the classifiers behind CA, CA (mesh) and FID), budget with its overrides and protocol options
    (:data:`TABLE_COLUMNS`); each other combination gets its own table. Within a table a
    configuration is every column of :data:`CONFIG_COLUMNS`; its runs (one per seed: of rows repeating a
    configuration, seed and fold only the newest counts) are averaged and, when there are several,
    "±" is the 95 % CI of that mean (:func:`ci95`). Rows are ranked within
    each setting by the protocol's primary metric; a row whose CI overlaps the rank-1 row's is marked
    :data:`OVERLAP_MARK`. Per-fold rows (decoder-cv) are left out in favour of the pooled row over
    all folds unless ``folds``. For each component only its newest version is ranked (a note says
    so). ``primary`` maps a protocol to its (metric, direction); without it the first metric column
    and the metric's own direction from ``directions`` are used.
    """
    import pandas as pd

    primary = primary or {}
    df = df[df["status"] == "ok"].copy()
    if protocol:
        df = df[df["protocol"] == protocol]
    if dataset:
        df = df[df["dataset"] == dataset]
    out: list[RankedTable] = []
    for (proto, dset, dhash), whole in df.groupby(["protocol", "dataset", "dataset_hash"], sort=True):
        notes: list[str] = []
        pversions = sorted(set(whole["protocol_version"]), key=lambda v: (v != "", _version_key(v)))
        if len(pversions) > 1:  # rows written before the column existed count as the oldest
            newest = pversions[-1]
            notes.append(f"protocol {proto!r} has rows of versions {', '.join(v or '(unrecorded)' for v in pversions)}; "
                         f"ranking only version {newest} (its metrics may be defined differently)")
            whole = whole[whole["protocol_version"] == newest]
        for comp in ("generator", "decoder"):
            vcol = f"{comp}_version"
            for name, sub in whole.groupby(comp):
                versions = sorted(set(sub[vcol]) - {""}, key=_version_key)
                if len(versions) > 1:
                    newest = versions[-1]
                    notes.append(f"{comp} {name!r} has rows of versions {', '.join(versions)}; ranking only "
                                 f"version {newest} (scores of different versions are not comparable)")
                    whole = whole[(whole[comp] != name) | (whole[vcol] == newest)]
        per_fold = whole["fold"] != ""
        if per_fold.any() and not folds:
            notes.append(f"{int(per_fold.sum())} per-fold row(s) not listed: each configuration's pooled row "
                         "scores all folds together (--folds lists them)")
            whole = whole[~per_fold]
        groups = list(whole.groupby(TABLE_COLUMNS[3:], sort=True))
        evaluators = sorted({k[0] for k, _ in groups})
        if len(groups) > 1:
            notes.append(f"{len(groups)} tables for this protocol and dataset version ({len(evaluators)} evaluator(s)): "
                         "rows that differ in evaluator, budget, budget overrides or protocol options are never "
                         "ranked together")
        for (evaluator, budget, b_over, p_opts), part in groups:
            part = part.sort_values("utc_time", kind="stable")
            once = part.drop_duplicates(CONFIG_COLUMNS + ["seed", "fold"], keep="last")
            table_notes = list(notes)
            if len(once) < len(part):
                table_notes.append(f"{len(part) - len(once)} row(s) repeat a configuration and seed of this table "
                                   "(a run scored again, or a reference row such as ground truth that every run "
                                   "adds): only the newest counts, so runs = seeds")
            part = once.copy()
            metrics = [m for m in metric_columns(part) if (part[m] != "").any()]
            for m in metrics:
                part[m] = pd.to_numeric(part[m], errors="coerce")
            agg_rows = []
            for key, g in part.groupby(CONFIG_COLUMNS, sort=False):
                row = dict(zip(CONFIG_COLUMNS, key))
                row["runs"] = len(g)
                fid = sorted(set(g["fid_features"]) - {""})
                if fid:
                    row["fid_features"] = ", ".join(fid)
                for m in metrics:
                    vals = g[m].dropna()
                    row[m] = float(vals.mean()) if len(vals) else float("nan")
                    row[f"{m}±"] = ci95(vals)
                agg_rows.append(row)
            table = pd.DataFrame(agg_rows)
            declared = primary.get(proto) or (metrics[0] if metrics else None, None)
            pm, pdir = (declared, None) if isinstance(declared, str) else declared
            pdir = pdir or directions.get(pm or "", "lower")
            if pm and pm in table:
                asc = pdir == "lower"
                table = table.sort_values(["setting", pm], ascending=[True, asc], na_position="last")
                table.insert(0, "rank", table.groupby("setting")[pm].rank(ascending=asc, method="min"))
                table.insert(1, "overlaps_first", _overlaps_first(table, pm))
            multi = bool(len(table)) and int(table["runs"].max()) > 1
            out.append(RankedTable(proto, dset, dhash, table.reset_index(drop=True), metrics, table_notes,
                                   evaluator=evaluator, budget=config_label(budget, b_over, p_opts),
                                   primary=pm or "", direction=pdir if pm else "",
                                   pm="95 % CI over seeds" if multi else ""))
    return out


def _overlaps_first(table, metric: str) -> list[bool]:
    """Per row: its 95 % CI on ``metric`` overlaps that of the rank-1 row of its setting (rank > 1)."""
    out = []
    for _, r in table.iterrows():
        first = table[(table["setting"] == r["setting"]) & (table["rank"] == 1)]
        if r["rank"] == 1 or first.empty:
            out.append(False)
            continue
        f = first.iloc[0]
        a, ha, b, hb = r[metric], r[f"{metric}±"], f[metric], f[f"{metric}±"]
        if any(isinstance(x, float) and math.isnan(x) for x in (a, ha, b, hb)):
            out.append(False)
            continue
        out.append(bool(abs(a - b) <= ha + hb))
    return out


def _version_key(v: str):
    try:
        return (0, tuple(int(x) for x in v.split(".")))
    except ValueError:
        return (1, v)


def format_table(rt: RankedTable, fmt: str = "github") -> str:
    """Render a ranked table with ``mean ± std`` cells."""
    from tabulate import tabulate

    t = rt.table
    if t.empty:
        return "(no rows)"
    cols = [c for c in ("rank", "setting", "generator", "decoder", "budget", "runs") if c in t]
    rows = []
    for _, r in t.iterrows():
        cells = [(rank_cell(r) if c == "rank" else r[c]) for c in cols]
        if "budget" in cols:
            cells[cols.index("budget")] = config_label(r.get("budget", ""), r.get("budget_overrides", ""),
                                                       r.get("protocol_options", ""))
        opts = "; ".join(x for x in (r.get("generator_options", ""), r.get("decoder_options", "")) if x and x != "{}")
        if opts:
            cells[cols.index("generator") if "generator" in cols else 0] = f"{r['generator']} {opts}"
        for m in rt.metrics:
            v, s = r.get(m), r.get(f"{m}±")
            cells.append(mean_pm(v, s))
        if "fid_features" in t:
            cells.append(r.get("fid_features") if isinstance(r.get("fid_features"), str) else "")
        rows.append(cells)
    extra = ["fid features"] if "fid_features" in t else []
    return tabulate(rows, headers=cols + rt.metrics + extra, tablefmt=fmt,
                    colalign=["right" if c in ("rank", "runs") else "left" for c in cols]
                    + ["right"] * len(rt.metrics) + ["left"] * len(extra))


def rank_cell(r: Any) -> str:
    """The rank, with :data:`OVERLAP_MARK` when the row's CI overlaps the rank-1 row's."""
    return _fmt_rank(r.get("rank")) + (OVERLAP_MARK if bool(r.get("overlaps_first", False)) else "")


def mean_pm(v: Any, s: Any) -> str:
    """``mean ± spread`` (just the mean when there is no spread, e.g. a single run; empty for no value)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4g}" if s is None or (isinstance(s, float) and math.isnan(s)) else f"{v:.4g} ± {s:.3g}"


def config_label(budget: str, budget_overrides: str, protocol_options: str) -> str:
    """The budget cell: the budget name, then its overrides and the protocol options (``smoke epochs=1``)."""
    parts = [budget]
    for raw, prefix in ((budget_overrides, ""), (protocol_options, "protocol ")):
        if raw and raw != "{}":
            try:
                items = json.loads(raw).items()
            except (json.JSONDecodeError, AttributeError):
                parts.append(prefix + str(raw))
                continue
            parts.append(prefix + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(items)))
    return " ".join(parts)


def _fmt_rank(v: Any) -> str:
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return ""
