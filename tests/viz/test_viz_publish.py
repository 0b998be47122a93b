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

from fc4dfs.benchmark.viz.page import build_html, image_data_uri
from limits import assert_above

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


def _fake_run(runs: Path, run_id: str, method: str, color: tuple[int, int, int]) -> Path:
    import json

    (runs / run_id / "render").mkdir(parents=True)
    (runs / run_id / "examples.json").write_text(json.dumps([{"index": 0, "method": method}]))
    return png(runs / run_id / "render" / "example_0_strip.png", color)


def _published(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    from fc4dfs.benchmark import leaderboard as lb
    from fc4dfs.benchmark.publishing import publish

    runs = tmp_path / "runs"
    base = {"status": "ok", "protocol": "e2e", "setting": "e2e", "dataset": "synthetic", "dataset_hash": "h",
            "generator_version": "1", "decoder": "miadnet", "decoder_version": "1", "protocol_version": "4",
            "evaluator": "ev1"}
    strips = {}
    rows = []
    for run, gen, opts, budget, seed, e_mesh, color in (
            ("a0", "fc_lstm", '{"alpha": 0.3}', "smoke", 0, 1.0, (200, 30, 30)),
            ("a1", "fc_lstm", '{"alpha": 0.3}', "smoke", 1, 1.2, (200, 30, 30)),
            ("b0", "fc_lstm", '{"alpha": 0.7}', "smoke", 0, 0.8, (30, 200, 30)),
            ("c0", "mlp", "", "smoke", 0, 2.0, (30, 30, 200)),
            ("q0", "mlp", "", "quick", 0, 1.5, (90, 90, 90))):
        strips[run] = _fake_run(runs, run, f"{gen}+miadnet", color).read_bytes()
        rows.append({**base, "run_id": run, "generator": gen, "generator_options": opts, "budget": budget,
                     "seed": seed, "e_mesh": e_mesh, "ca": 50.0, "fid_features": "12-d x 36"})
        # the run's ground-truth row: scored, never shown as an example of a method
        rows.append({**base, "run_id": run, "generator": "gt", "decoder": "gt", "budget": budget, "seed": seed,
                     "ca": 100.0, "generator_version": "", "decoder_version": ""})
    lb.append_rows(tmp_path / "lb.csv", rows)
    publish(tmp_path / "lb.csv", tmp_path / "site", runs)
    return tmp_path / "site" / "leaderboard.html", strips


def test_published_page_captions_order_options_and_legends(tmp_path: Path):
    page, strips = _published(tmp_path)
    text = page.read_text()
    p = _Collect()
    p.feed(text)
    sections = [a for t, a in p.tags if t == "section"]
    assert len(sections) == 2  # smoke and quick never share a table
    assert sorted(a["data-protocol"] for a in sections) == ["e2e on synthetic (data h) at quick, evaluator ev1",
                                                            "e2e on synthetic (data h) at smoke, evaluator ev1"]
    legends = text.count('<ul class="legend">')
    assert legends == 2 and text.count("ranked by e_mesh (lower is better)") == 2
    assert "e_mesh [mm] ↓" in text and "± is the 95 % CI over seeds" in text
    smoke = _Collect()
    smoke.feed(re.search(r'<section[^>]*at smoke.*?</section>', text, re.S).group(0))
    figures = [a for t, a in smoke.tags if t == "figure"]
    captions = [a["data-method"] for a in figures]
    # rank order (b0 0.8 < a 1.1 < c 2.0), options shown, the gt rows have no strip of another method
    assert captions == ['fc_lstm {"alpha": 0.7}', 'fc_lstm {"alpha": 0.3}', "mlp"], captions
    srcs = [a["src"] for t, a in smoke.tags if t == "img"]
    for src, run in zip(srcs, ("b0", "a0", "c0")):
        assert base64.b64decode(src.split(",", 1)[1]) == strips[run], run  # the strip of the captioned method
    # numeric columns right-aligned: rank (with the overlap mark), runs and every metric
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", re.search(r'<section[^>]*at smoke.*?</section>', text,
                                                                     re.S).group(0)).group(1)
    cells = re.findall(r'<th( class="num")?>([^<]*)</th>', header)
    aligned = {name: bool(num) for num, name in cells}
    assert aligned == {"rank": True, "setting": False, "generator": False, "decoder": False, "runs": True,
                       "ca": True, "e_mesh": True, "fid features": False}, aligned


@needs_chromium
def test_published_page_screenshot_in_headless_chromium(tmp_path: Path):
    page, _ = _published(tmp_path)
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/profile",
               "--hide-scrollbars", "--window-size=1280,1400", f"--screenshot={shot}", page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (1400, 1280)
    # the example strips are on screen: each strip's solid colour covers most of its 60 x 40 pixels
    for color in ((200, 30, 30), (30, 200, 30), (30, 30, 200)):
        hits = (np.abs(img - np.array(color)).sum(-1) < 30).sum()
        assert_above(hits, 0.5 * 60 * 40, f"strip {color}: pixels on screen (limit half the strip)")
    keep = Path(__import__("os").environ.get("FC4DFS_SCREENSHOT_DIR", tmp_path))
    if keep != tmp_path:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "leaderboard.png")
