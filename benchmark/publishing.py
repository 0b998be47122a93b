"""Leaderboard views: ranked markdown, the published HTML page, rebuilding the CSV from run records."""
from __future__ import annotations

import json
from pathlib import Path

from fc4dfs.benchmark import leaderboard as lb
from fc4dfs.datasets.storage import atomic_write_text
from fc4dfs.plugins.manager import registry


def directions() -> dict[str, str]:
    """Each registered metric's direction (lower/higher is better)."""
    out = {}
    for spec in registry().specs("metric"):
        try:
            out[spec.name] = spec.load().direction
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


def markdown(path: Path, protocol: str | None = None, dataset: str | None = None) -> str:
    """Ranked tables as markdown, one section per (protocol, dataset version)."""
    df = lb.load_frame(path)
    failed = int((df["status"] == "failed").sum()) if "status" in df else 0
    tables = lb.rank(df, directions(), primaries(), protocol, dataset)
    parts = []
    for rt in tables:
        parts.append(f"### {rt.protocol} on {rt.dataset} (data {rt.dataset_hash})\n")
        parts.extend(f"> note: {n}\n" for n in rt.notes)
        parts.append(lb.format_table(rt) + "\n")
    if not tables:
        parts.append("(no finished runs match)\n")
    if failed:
        parts.append(f"{failed} failed run(s) are recorded in {path} (status=failed) and not ranked.\n")
    return "\n".join(parts)


def publish(path: Path, out: Path, runs: Path, protocol: str | None = None,
            dataset: str | None = None) -> list[Path]:
    """Write ``leaderboard.md`` and a self-contained ``leaderboard.html`` into ``out``."""
    df = lb.load_frame(path)
    tables = lb.rank(df, directions(), primaries(), protocol, dataset)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "leaderboard.md"
    atomic_write_text(md, "# fc4dfs-bench leaderboard\n\n" + markdown(path, protocol, dataset))
    written = [md]
    try:
        from fc4dfs.benchmark.publish import build_html
    except ImportError:
        return written
    html_tables, images = {}, {}
    for rt in tables:
        key = f"{rt.protocol} — {rt.dataset} ({rt.dataset_hash})"
        html_tables[key] = _display_frame(rt)
        images[key] = _example_images(df, rt, runs)
    html = build_html(html_tables, images, title="fc4dfs-bench leaderboard",
                      notes="Mean ± std over the seeds of one configuration (no ± for a single run); rank by each "
                            "protocol's primary metric.")
    page = out / "leaderboard.html"
    atomic_write_text(page, html)
    written.append(page)
    return written


def _display_frame(rt: lb.RankedTable):
    import pandas as pd

    rows = []
    for _, r in rt.table.iterrows():
        row = {c: r[c] for c in ("rank", "setting", "generator", "decoder", "budget", "runs") if c in r}
        if "budget" in row:
            row["budget"] = lb.config_label(r["budget"], r.get("budget_overrides", ""), r.get("protocol_options", ""))
        for m in rt.metrics:
            row[m] = lb.mean_pm(r[m], r[m + "±"])
        rows.append(row)
    return pd.DataFrame(rows)


def _example_images(df, rt: lb.RankedTable, runs: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    part = df[(df["protocol"] == rt.protocol) & (df["dataset"] == rt.dataset) & (df["status"] == "ok")]
    for _, r in part.iterrows():
        method = "+".join(x for x in (r["generator"], r["decoder"]) if x)
        if method in found:
            continue
        pngs = sorted((runs / r["run_id"] / "render").glob("*.png")) if (runs / r["run_id"]).is_dir() else []
        if pngs:
            found[method] = pngs[0]
    return found


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
