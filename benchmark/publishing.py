"""Leaderboard commands (`leaderboard show|publish|rebuild`): ranked markdown tables, the published folder
(the HTML page itself is built by `viz.page`), and rebuilding the CSV from run records."""
from __future__ import annotations

import json
from pathlib import Path

from fc4dfs.benchmark import leaderboard as lb
from fc4dfs.datasets.storage import atomic_write_text
from fc4dfs.plugins.manager import registry


def directions() -> dict[str, str]:
    """Each registered metric's direction (lower/higher is better)."""
    return {name: d for name, (_, d) in _metric_info().items()}


def units() -> dict[str, str]:
    """Each registered metric's unit ("" when unitless)."""
    return {name: u for name, (u, _) in _metric_info().items()}


def _metric_info() -> dict[str, tuple[str, str]]:
    out = {}
    for spec in registry().specs("metric"):
        try:
            cls = spec.load()
            out[spec.name] = (str(getattr(cls, "unit", "") or ""), cls.direction)
        except Exception:  # noqa: BLE001 - a broken metric plugin must not hide the table
            continue
    return out


def primaries() -> dict[str, tuple[str, str]]:
    """Each registered protocol's declared (primary metric, direction)."""
    out = {}
    for spec in registry().specs("protocol"):
        try:
            cls = spec.load()
        except Exception:  # noqa: BLE001 - a broken protocol plugin must not hide the table
            continue
        out[spec.name] = (cls.primary_metric, cls.direction)
    return out


def title(rt: lb.RankedTable) -> str:
    """A table's heading: protocol, dataset version, budget and evaluator (what makes rows comparable)."""
    ev = f", evaluator {rt.evaluator}" if rt.evaluator else ""
    return f"{rt.protocol} on {rt.dataset} (data {rt.dataset_hash}) at {rt.budget}{ev}"


def markdown(path: Path, protocol: str | None = None, dataset: str | None = None, folds: bool = False) -> str:
    """Ranked tables as markdown, one section per comparable group (see :func:`lb.rank`), each with its
    legend (primary metric, units, directions, what "±" is) and notes."""
    return frame_markdown(lb.load_frame(path), protocol, dataset, folds, source=path)


def frame_markdown(df, protocol: str | None = None, dataset: str | None = None, folds: bool = False,
                   source: Path | str = "the leaderboard") -> str:
    """:func:`markdown` of leaderboard rows already read (:func:`lb.load_frame`, :func:`lb.frame_of`)."""
    failed = int((df["status"] == "failed").sum()) if "status" in df else 0
    tables = lb.rank(df, directions(), primaries(), protocol, dataset, folds=folds)
    unit_of, dir_of = units(), directions()
    parts = []
    for rt in tables:
        parts.append(f"### {title(rt)}\n")
        parts.extend(f"> {line}\n" for line in rt.legend(unit_of, dir_of))
        parts.extend(f"> note: {n}\n" for n in rt.notes)
        parts.append(lb.format_table(rt) + "\n")
    if not tables:
        parts.append("(no finished runs match)\n")
    if failed:
        from tabulate import tabulate

        parts.append(f"### Failed runs (recorded in {source}, not ranked)\n")
        bad = df[df["status"] == "failed"]
        parts.append(tabulate([[r["utc_time"], r["protocol"], r["generator"], r["decoder"], r["budget"], r["seed"],
                                r["error"][:120]] for _, r in bad.iterrows()],
                              headers=["utc time", "protocol", "generator", "decoder", "budget", "seed", "error"],
                              tablefmt="github") + "\n")
    return "\n".join(parts)


def publish(path: Path, out: Path, runs: Path, protocol: str | None = None,
            dataset: str | None = None, folds: bool = False) -> list[Path]:
    """Write ``leaderboard.md`` and a self-contained ``leaderboard.html`` into ``out``."""
    df = lb.load_frame(path)
    tables = lb.rank(df, directions(), primaries(), protocol, dataset, folds=folds)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "leaderboard.md"
    atomic_write_text(md, "# fc4dfs-bench leaderboard\n\n" + markdown(path, protocol, dataset, folds))
    written = [md]
    try:
        from fc4dfs.benchmark.viz.page import build_html
    except ImportError:
        return written
    html_tables, images, legends = {}, {}, {}
    unit_of, dir_of = units(), directions()
    for rt in tables:
        key = title(rt)
        html_tables[key] = _display_frame(rt)
        images[key] = _example_images(df, rt, runs)
        legends[key] = rt.legend(unit_of, dir_of) + [f"note: {n}" for n in rt.notes]
    html = build_html(html_tables, images, title="fc4dfs-bench leaderboard", legends=legends,
                      notes="Each table holds only comparable rows: one protocol, dataset version, budget and "
                            "evaluator. Its legend names the primary metric, each metric's unit and direction, "
                            "and what ± is.")
    page = out / "leaderboard.html"
    atomic_write_text(page, html)
    written.append(page)
    return written


def _display_frame(rt: lb.RankedTable):
    import pandas as pd

    rows = []
    for _, r in rt.table.iterrows():
        row = {c: r[c] for c in ("rank", "setting", "generator", "decoder", "runs") if c in r}
        if "rank" in row:
            row["rank"] = lb.rank_cell(r)
        if "generator" in row:
            row["generator"] = method_label(r)
        for m in rt.metrics:
            row[m] = lb.mean_pm(r[m], r[m + "±"])
        if "fid_features" in r and isinstance(r["fid_features"], str):
            row["fid features"] = r["fid_features"]
        rows.append(row)
    return pd.DataFrame(rows)


def method_label(r) -> str:
    """The generator cell: its name and, when not the defaults, its options (and the decoder's)."""
    opts = "; ".join(x for x in (r.get("generator_options", ""), r.get("decoder_options", "")) if x and x != "{}")
    return f"{r['generator']} {opts}" if opts else str(r["generator"])


def _example_images(df, rt: lb.RankedTable, runs: Path) -> dict[str, Path]:
    """One rendered example per ranked configuration, in rank order, captioned with the method the
    strip shows: each run's ``render/*.png`` file is named after the method it renders
    (``examples.json``), so a run's ground-truth strip is never captioned with its generator."""
    found: dict[str, Path] = {}
    part = df[(df["protocol"] == rt.protocol) & (df["dataset"] == rt.dataset) & (df["status"] == "ok")
              & (df["dataset_hash"] == rt.dataset_hash) & (df["evaluator"] == rt.evaluator)]
    for _, ranked_row in rt.table.iterrows():
        label = method_label(ranked_row)
        method = "+".join(x for x in (ranked_row["generator"], ranked_row["decoder"]) if x)
        if label in found:
            continue
        same = part[(part["generator"] == ranked_row["generator"]) & (part["decoder"] == ranked_row["decoder"])
                    & (part["generator_options"] == ranked_row["generator_options"])]
        for run_id in dict.fromkeys(same["run_id"]):
            png = _render_of(runs / run_id, method)
            if png is not None:
                found[label] = png
                break
    return found


def _render_of(run_dir: Path, method: str) -> Path | None:
    """The rendered strip of ``method`` in a run folder, found through ``examples.json``."""
    meta_path = run_dir / "examples.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for m in meta:
        if m.get("method") != method:
            continue
        png = run_dir / "render" / f"example_{m.get('index')}_strip.png"
        if png.is_file():
            return png
    return None


def rebuild(runs: Path, path: Path) -> int:
    """Append the rows of every finished run record under ``runs`` (existing rows are kept, not duplicated).

    Raises LeaderboardError when ``runs`` is not a directory or holds no run record.
    """
    if not runs.is_dir():
        raise lb.LeaderboardError(f"--runs {runs}: no such directory of runs")
    records = sorted(runs.glob("*/record.json"))
    if not records:
        raise lb.LeaderboardError(f"--runs {runs}: no finished run (no */record.json) to rebuild from")
    rows = []
    for rec in records:
        try:
            data = json.loads(rec.read_text())
        except json.JSONDecodeError:
            continue
        if data.get("status") == "ok":
            rows.extend(data.get("rows_flat", []))
    return lb.append_rows(path, rows) if rows else 0
