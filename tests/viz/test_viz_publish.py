"""The published leaderboard page: self-contained, tables present, images decode (headless Chromium)."""
from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fc4dfs.benchmark.publish import build_html, image_data_uri

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (CI installs it: apt-get install -y chromium)")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def png(path: Path, color: tuple[int, int, int], size=(60, 40)) -> Path:
    Image.fromarray(np.full((size[1], size[0], 3), color, np.uint8)).save(path)
    return path


@pytest.fixture
def page_inputs(tmp_path):
    tables = {
        "e2e": pd.DataFrame({"rank": [1, 2], "generator": ["fc_lstm", "mlp"], "decoder": ["miadnet", "pca"],
                             "E_mesh (mm)": [1.234, 2.5]}),
        "decoder-cv": pd.DataFrame({"rank": [1], "decoder": ["s2d <b>"], "error (mm)": ["0.61 ± 0.05"]}),
    }
    images = {"e2e": {"fc_lstm+miadnet": png(tmp_path / "a.png", (200, 30, 30)),
                      "mlp+pca": png(tmp_path / "b.png", (30, 30, 200))},
              "decoder-cv": {"s2d": png(tmp_path / "c.png", (30, 200, 30))}}
    return tables, images


def test_page_is_self_contained_with_tables_and_images(page_inputs):
    tables, images = page_inputs
    page = build_html(tables, images, "fc4dfs leaderboard <test>", notes="Budget quick.\n\nSecond & last.")
    p = _Collect()
    p.feed(page)
    tags = [t for t, _ in p.tags]
    assert tags.count("table") == 2 and tags.count("section") == 2
    imgs = [a for t, a in p.tags if t == "img"]
    assert len(imgs) == 3
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(a["src"].split(",", 1)[1]))).verify()
    # nothing is fetched: no external URL or file reference anywhere
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)
    assert "<link" not in page and "@import" not in page
    text = "".join(p.text)
    assert "fc4dfs leaderboard <test>" in text and "s2d <b>" in text  # escaped, shown literally
    assert "<b>" not in page.replace("&lt;b&gt;", "")
    # ranked order is kept
    assert text.index("fc_lstm") < text.index("mlp")
    assert "Second & last." in text
    # number columns (plain or 'mean ± std') are right-aligned, names are not
    th = [a.get("class") for t, a in p.tags if t == "th"]
    assert th[:4] == ["num", None, None, "num"] and th[-1] == "num"
    assert [a.get("class") for t, a in p.tags if t == "tr"] == [None, "top", None, None, "top"]  # rank 1 rows


def test_missing_or_broken_image_is_named(page_inputs, tmp_path):
    tables, images = page_inputs
    with pytest.raises(FileNotFoundError, match="nope.png"):
        build_html(tables, {"e2e": {"x": tmp_path / "nope.png"}}, "t")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        image_data_uri(bad)


def _chromium_dump(page: str) -> str:
    probe = """<script>
    window.addEventListener('load', () => {
      const imgs = [...document.images];
      const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
      document.body.setAttribute('data-images-ok', ok + '/' + imgs.length);
      document.body.setAttribute('data-tables', document.querySelectorAll('table').length);
      document.body.setAttribute('data-rows', document.querySelectorAll('table tbody tr').length);
    });</script>"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/profile",
               "--virtual-time-budget=5000", "--dump-dom", path.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _attr(dom: str, name: str) -> str:
    m = re.search(rf'{name}="([^"]*)"', dom)
    assert m, f"{name} missing: Chromium did not run the page to its load event"
    return m.group(1)


@needs_chromium
def test_page_loads_in_headless_chromium(page_inputs):
    tables, images = page_inputs
    dom = _chromium_dump(build_html(tables, images, "leaderboard"))
    assert _attr(dom, "data-images-ok") == "3/3"
    assert _attr(dom, "data-tables") == "2" and _attr(dom, "data-rows") == "3"


@needs_chromium
def test_chromium_probe_detects_an_undecodable_image(page_inputs, tmp_path):
    tables, images = page_inputs
    good = images["e2e"]["mlp+pca"].read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[:30])  # valid signature, broken data
    dom = _chromium_dump(build_html(tables, {"e2e": {"broken": truncated, "ok": images["e2e"]["mlp+pca"]}}, "t"))
    assert _attr(dom, "data-images-ok") == "1/2"
