"""The published leaderboard page: one self-contained HTML file (inline CSS, base64 images).

``build_html`` gets the ranked table of each protocol and, per protocol, one rendered example per
method; it returns the page as a string (the caller writes it). Nothing is fetched at view time.
"""
from __future__ import annotations

import base64
import html
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence as Seq

if TYPE_CHECKING:
    import pandas as pd

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".webp": "image/webp"}
_SIGNATURES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/gif": (b"GIF87a", b"GIF89a"),
               "image/jpeg": (b"\xff\xd8\xff",), "image/webp": (b"RIFF",)}

_CSS = """
:root { --fg:#1d232b; --muted:#5b6672; --line:#d9dee4; --head:#f2f4f7; --accent:#2a5bd7; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 24px 28px 60px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 40px 0 8px; padding-top: 8px; border-top: 2px solid var(--line); }
h3 { font-size: 1.05em; margin: 22px 0 8px; color: var(--muted); }
p.meta, p.notes { color: var(--muted); margin: 4px 0 12px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
.table-wrap { overflow-x: auto; }
table.leaderboard { border-collapse: collapse; font-size: 0.9em; font-variant-numeric: tabular-nums; }
table.leaderboard th, table.leaderboard td { border-bottom: 1px solid var(--line); padding: 5px 10px;
       text-align: left; white-space: nowrap; }
table.leaderboard .num { text-align: right; }
table.leaderboard th { background: var(--head); position: sticky; top: 0; }
table.leaderboard tr.top td { font-weight: 600; }
.gallery { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; display: block; }
figcaption { font-size: 0.88em; color: var(--muted); margin-top: 4px; }
ul.legend { color: var(--muted); font-size: 0.88em; margin: 4px 0 10px; padding-left: 18px; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def image_data_uri(path: str | Path) -> str:
    """``data:`` URI of an image file (PNG, GIF, JPEG, WebP), checking that its bytes are that format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"example image {path} not found")
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"example image {path}: unsupported type {path.suffix!r} (use {', '.join(_MIME)})")
    data = path.read_bytes()
    if not data.startswith(_SIGNATURES[mime]):
        raise ValueError(f"example image {path} is not a valid {mime} file")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _notes_html(notes: str) -> str:
    paras = [p.strip() for p in re.split(r"\n\s*\n", notes or "") if p.strip()]
    return "".join(f'<p class="notes">{html.escape(p).replace(chr(10), "<br>")}</p>' for p in paras)


_NUMERIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?(\s*±\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?)?≈?$")


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table_html(df: "pd.DataFrame") -> str:
    """The ranked table; columns whose cells are all numbers (or 'mean ± spread', or blank) are right-aligned and
    rows ranked 1 (a ``rank`` column) are set in bold."""
    cols = [str(c) for c in df.columns]
    rows = [[_cell(v) for v in row] for row in df.itertuples(index=False, name=None)]
    blank = ("–", "")
    numeric = [bool(rows) and any(r[j].strip() not in blank for r in rows)
               and all(_NUMERIC.match(r[j].strip()) or r[j].strip() in blank for r in rows)
               for j in range(len(cols))]
    cls = [' class="num"' if n else "" for n in numeric]
    head = "".join(f"<th{cls[j]}>{html.escape(c)}</th>" for j, c in enumerate(cols))
    rank = cols.index("rank") if "rank" in cols else None
    body = "".join(("<tr class=\"top\">" if rank is not None and r[rank].strip() == "1" else "<tr>")
                   + "".join(f"<td{cls[j]}>{html.escape(v)}</td>" for j, v in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def build_html(tables: Mapping[str, "pd.DataFrame"], images: Mapping[str, Mapping[str, Path]], title: str,
               notes: str = "", legends: Mapping[str, Seq[str]] | None = None) -> str:
    """The leaderboard page: per protocol its ranked table and one embedded example per method.

    ``tables`` maps protocol -> ranked DataFrame (rows already in rank order); ``images`` maps
    protocol -> {method: image path}. Protocols that only have images still get a section. The
    result is one HTML document with every image inlined (base64), no external assets. ``legends``
    maps a section to the lines shown under its heading (primary metric, units, what "±" is).
    Examples keep the order of ``images[section]`` (rank order) and are captioned with their method.
    """
    protocols = list(tables) + [p for p in images if p not in tables]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>", f'<p class="meta">Generated {stamp} by fc4dfs-bench.</p>',
             _notes_html(notes)]
    if len(protocols) > 1:
        parts.append("<nav>" + "".join(f'<a href="#{_slug(p)}">{html.escape(p)}</a>' for p in protocols) + "</nav>")
    for proto in protocols:
        parts.append(f'<section id="{_slug(proto)}" data-protocol="{html.escape(proto, quote=True)}">')
        parts.append(f"<h2>{html.escape(proto)}</h2>")
        legend = (legends or {}).get(proto) or []
        if legend:
            parts.append('<ul class="legend">' + "".join(f"<li>{html.escape(x)}</li>" for x in legend) + "</ul>")
        df = tables.get(proto)
        if df is not None:
            if len(df):
                parts.append(f'<div class="table-wrap">{_table_html(df)}</div>')
            else:
                parts.append('<p class="notes">No results yet.</p>')
        examples = images.get(proto) or {}
        if examples:
            parts.append("<h3>Examples</h3>")
            parts.append('<div class="gallery">')
            for method, path in examples.items():
                uri = image_data_uri(path)
                alt = html.escape(f"{proto}: example rendered by {method}", quote=True)
                parts.append(f'<figure data-method="{html.escape(method, quote=True)}"><img src="{uri}" alt="{alt}" '
                             f'loading="eager"><figcaption>{html.escape(method)}</figcaption></figure>')
            parts.append("</div>")
        parts.append("</section>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
