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
]
REQUIRED = {"row_id", "run_id", "protocol", "dataset", "status"}
#: what makes two rows the same configuration: only rows equal in all of these (differing in seed,
#: and in fold for per-fold rows) are averaged and ranked together
CONFIG_COLUMNS = ["setting", "generator", "generator_options", "decoder", "decoder_options", "budget",
                  "budget_overrides", "protocol_options"]
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
    """Append rows to the CSV at ``path`` under a lock; returns how many were new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new_rows = [dict(r) for r in new_rows]
    for r in new_rows:
        r.setdefault("row_id", row_id(r))
    with FileLock(str(path) + ".lock", timeout=120):
        header, rows = read_rows(path)
        seen = {r["row_id"] for r in rows}
        added = [r for r in new_rows if r["row_id"] not in seen]
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


def load_frame(path: str | Path):
    """The leaderboard as a DataFrame (strings for identifiers, floats for metrics)."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise LeaderboardError(f"no leaderboard at {path}; run `fc4dfs-bench run ...` first")
    header, rows = read_rows(path)
    df = pd.DataFrame(rows, columns=header, dtype=str).fillna("")
    for c in BASE_COLUMNS:  # files written before a column existed
        if c not in df:
            df[c] = ""
    return df


def metric_columns(df) -> list[str]:
    base = set(BASE_COLUMNS)
    return [c for c in df.columns if c not in base and not c.endswith("_std")]


def rank(df, directions: dict[str, str], primary: dict[str, tuple[str, str] | str] | None = None,
         protocol: str | None = None, dataset: str | None = None) -> list[RankedTable]:
    """Aggregate mean ± std over seeds per configuration and setting, ranked per protocol/dataset.

    A configuration is every column of :data:`CONFIG_COLUMNS` (components and their options, budget
    and its overrides, protocol options): rows differing in any of them are never averaged together.
    Rows of different component or dataset versions are never ranked together: each dataset hash
    gets its own table, and for each component only its newest version is ranked (a note says so).
    ``primary`` maps a protocol to its (metric, direction); without it the first metric column and
    the metric's own direction from ``directions`` are used.
    """
    import pandas as pd

    primary = primary or {}
    df = df[df["status"] == "ok"].copy()
    if protocol:
        df = df[df["protocol"] == protocol]
    if dataset:
        df = df[df["dataset"] == dataset]
    out: list[RankedTable] = []
    for (proto, dset, dhash), part in df.groupby(["protocol", "dataset", "dataset_hash"], sort=True):
        notes: list[str] = []
        pversions = sorted(set(part["protocol_version"]), key=lambda v: (v != "", _version_key(v)))
        if len(pversions) > 1:  # rows written before the column existed count as the oldest
            newest = pversions[-1]
            notes.append(f"protocol {proto!r} has rows of versions {', '.join(v or '(unrecorded)' for v in pversions)}; "
                         f"ranking only version {newest} (its metrics may be defined differently)")
            part = part[part["protocol_version"] == newest]
        for comp in ("generator", "decoder"):
            vcol = f"{comp}_version"
            for name, sub in part.groupby(comp):
                versions = sorted(set(sub[vcol]) - {""}, key=_version_key)
                if len(versions) > 1:
                    newest = versions[-1]
                    notes.append(f"{comp} {name!r} has rows of versions {', '.join(versions)}; ranking only "
                                 f"version {newest} (scores of different versions are not comparable)")
                    part = part[(part[comp] != name) | (part[vcol] == newest)]
        metrics = [m for m in metric_columns(part) if (part[m] != "").any()]
        for m in metrics:
            part[m] = pd.to_numeric(part[m], errors="coerce")
        keys = CONFIG_COLUMNS
        agg_rows = []
        for key, g in part.groupby(keys, sort=False):
            row = dict(zip(keys, key))
            row["runs"] = len(g)
            for m in metrics:
                vals = g[m].dropna()
                row[m] = float(vals.mean()) if len(vals) else float("nan")
                # ± is the std over the configuration's runs (seeds); none with a single run
                row[f"{m}±"] = float(vals.std(ddof=0)) if len(vals) > 1 else float("nan")
            agg_rows.append(row)
        table = pd.DataFrame(agg_rows)
        declared = primary.get(proto) or (metrics[0] if metrics else None, None)
        pm, pdir = (declared, None) if isinstance(declared, str) else declared
        if pm and pm in table:
            asc = (pdir or directions.get(pm, "lower")) == "lower"
            table = table.sort_values(["setting", pm], ascending=[True, asc], na_position="last")
            table.insert(0, "rank", table.groupby("setting")[pm].rank(ascending=asc, method="min"))
        out.append(RankedTable(proto, dset, dhash, table.reset_index(drop=True), metrics, notes))
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
        cells = [(_fmt_rank(r[c]) if c == "rank" else r[c]) for c in cols]
        if "budget" in cols:
            cells[cols.index("budget")] = config_label(r.get("budget", ""), r.get("budget_overrides", ""),
                                                       r.get("protocol_options", ""))
        opts = "; ".join(x for x in (r.get("generator_options", ""), r.get("decoder_options", "")) if x and x != "{}")
        if opts:
            cells[cols.index("generator") if "generator" in cols else 0] = f"{r['generator']} {opts}"
        for m in rt.metrics:
            v, s = r.get(m), r.get(f"{m}±")
            cells.append(mean_pm(v, s))
        rows.append(cells)
    return tabulate(rows, headers=cols + rt.metrics, tablefmt=fmt)


def mean_pm(v: Any, s: Any) -> str:
    """``mean ± std`` (just the mean when there is no std, e.g. a single run; empty for no value)."""
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
