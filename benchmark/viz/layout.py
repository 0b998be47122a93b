"""Pixel-exact figure layout: a labelled grid of panels, drawn once, then filled by pasting.

The template (titles, row and column labels, colour bar) is drawn with matplotlib once; panels are
RGB arrays pasted into their boxes. Strips, heatmap grids and every frame of an animation share
this code, so a 30-frame GIF costs 30 pastes, not 30 figure layouts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence as Seq

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_DPI = 100.0
_PT = 72.0 / _DPI  # points per pixel


@dataclass(frozen=True)
class ColorScale:
    """A labelled colour scale shared by every heatmap panel of a figure (errors in mm)."""

    vmax: float
    vmin: float = 0.0
    label: str = "per-vertex error (mm)"
    cmap_name: str = "turbo"  # blue = low, red = high, as FC-4DFS Fig. 6

    @property
    def cmap(self) -> Colormap:
        return colormaps[self.cmap_name]

    @property
    def norm(self) -> Normalize:
        return Normalize(self.vmin, self.vmax, clip=True)

    @classmethod
    def for_values(cls, values: Seq[np.ndarray], percentile: float = 99.0, **kw) -> "ColorScale":
        """A scale from 0 to a round number just above the ``percentile`` of all ``values``."""
        flat = [np.asarray(v, dtype=np.float64).ravel() for v in values if v is not None and np.size(v)]
        top = float(np.percentile(np.concatenate(flat), percentile)) if flat else 1.0
        return cls(vmax=nice_ceil(top), **kw)


def nice_ceil(x: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k that is >= x (>= 0.1 mm)."""
    x = max(float(x), 0.1)
    exp = math.floor(math.log10(x))
    for m in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if m * 10**exp >= x - 1e-12:
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


@dataclass
class PanelGrid:
    """An ``n_rows x n_cols`` grid of ``panel_w x panel_h`` pixel panels with labels.

    ``colorbar_rows`` picks the rows the colour bar runs beside (default: all rows).
    """

    n_rows: int
    n_cols: int
    panel_w: int
    panel_h: int
    title: str | None = None
    row_labels: Seq[str] | None = None
    col_labels: Seq[str] | None = None
    scale: ColorScale | None = None
    colorbar_rows: tuple[int, int] | None = None
    gap: int = 6
    footer: str | None = None
    _template: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_rows < 1 or self.n_cols < 1:
            raise ValueError(f"a panel grid needs at least one row and column, got {self.n_rows}x{self.n_cols}")
        if self.row_labels is not None and len(self.row_labels) != self.n_rows:
            raise ValueError(f"{len(self.row_labels)} row labels for {self.n_rows} rows")
        if self.col_labels is not None and len(self.col_labels) != self.n_cols:
            raise ValueError(f"{len(self.col_labels)} column labels for {self.n_cols} columns")
        col_lines = max((str(c).count("\n") + 1 for c in self.col_labels or []), default=0)
        self.top = 10 + (30 if self.title else 0) + 17 * col_lines
        longest = max((max(len(p) for p in str(r).split("\n")) for r in self.row_labels or []), default=0)
        self.left = 10 if not self.row_labels else int(min(190, max(70, 7.2 * longest + 18)))
        self.right = 98 if self.scale is not None else 10
        self.bottom = 10 + (20 if self.footer else 0)
        self.width = self.left + self.n_cols * self.panel_w + (self.n_cols - 1) * self.gap + self.right
        self.height = self.top + self.n_rows * self.panel_h + (self.n_rows - 1) * self.gap + self.bottom

    def box(self, row: int, col: int) -> tuple[int, int]:
        """Top-left pixel (y, x) of panel (row, col)."""
        return (self.top + row * (self.panel_h + self.gap), self.left + col * (self.panel_w + self.gap))

    def _frac(self, x: float, y: float) -> tuple[float, float]:
        """Figure fraction of pixel (x from left, y from top)."""
        return x / self.width, 1.0 - y / self.height

    def template(self) -> np.ndarray:
        """The grid's background, labels and colour bar as an RGB array ``[H, W, 3]``."""
        if self._template is not None:
            return self._template
        fig = Figure(figsize=(self.width / _DPI, self.height / _DPI), dpi=_DPI, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        if self.title:
            fig.text(*self._frac(self.width / 2, 8), self.title, ha="center", va="top", fontsize=12,
                     fontweight="bold")
        for c, lab in enumerate(self.col_labels or []):
            y, x = self.box(0, c)
            fig.text(*self._frac(x + self.panel_w / 2, y - 4), str(lab), ha="center", va="bottom",
                     fontsize=9.5, linespacing=1.15)
        for r, lab in enumerate(self.row_labels or []):
            y, x = self.box(r, 0)
            fig.text(*self._frac(x - 8, y + self.panel_h / 2), str(lab), ha="right", va="center",
                     fontsize=9.5, linespacing=1.15)
        if self.footer:
            fig.text(*self._frac(self.left, self.height - 6), self.footer, ha="left", va="bottom",
                     fontsize=8, color="0.35")
        if self.scale is not None:
            r0, r1 = self.colorbar_rows or (0, self.n_rows - 1)
            y0 = self.box(r0, 0)[0] + 6
            y1 = self.box(r1, 0)[0] + self.panel_h - 6
            x0 = self.width - self.right + 14
            cax = fig.add_axes((x0 / self.width, 1.0 - y1 / self.height, 14 / self.width,
                                (y1 - y0) / self.height))
            sm = ScalarMappable(norm=self.scale.norm, cmap=self.scale.cmap)
            cb = fig.colorbar(sm, cax=cax, extend="max")
            cb.set_label(self.scale.label, fontsize=9)
            cb.ax.tick_params(labelsize=8)
        canvas.draw()
        self._template = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        if self._template.shape[:2] != (self.height, self.width):  # canvas rounding; keep exact size
            fixed = np.full((self.height, self.width, 3), 255, dtype=np.uint8)
            h = min(self.height, self._template.shape[0])
            w = min(self.width, self._template.shape[1])
            fixed[:h, :w] = self._template[:h, :w]
            self._template = fixed
        return self._template

    def compose(self, panels: Seq[Seq[np.ndarray | None]]) -> np.ndarray:
        """The template with ``panels[row][col]`` (RGB ``[panel_h, panel_w, 3]`` or None) pasted in."""
        img = self.template().copy()
        for r, row in enumerate(panels):
            for c, p in enumerate(row):
                if p is None:
                    continue
                if p.shape[:2] != (self.panel_h, self.panel_w):
                    raise ValueError(f"panel ({r}, {c}) is {p.shape[:2]}, the grid expects "
                                     f"{(self.panel_h, self.panel_w)}")
                y, x = self.box(r, c)
                img[y:y + self.panel_h, x:x + self.panel_w] = p[..., :3]
        return img


def progress_bar(panel: np.ndarray, fraction: float, color: Seq[int] = (60, 60, 60)) -> np.ndarray:
    """``panel`` with a 3-pixel time bar along its bottom edge filled to ``fraction``."""
    out = panel.copy()
    w = out.shape[1]
    out[-3:, :] = 225
    out[-3:, : max(1, int(round(fraction * w)))] = np.asarray(color, dtype=np.uint8)
    return out
