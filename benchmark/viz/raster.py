"""Headless CPU mesh rendering with matplotlib (Agg): painter's algorithm + Lambert shading.

Triangles are sorted far to near and drawn in one call of Agg's Gouraud-triangle primitive (the
one matplotlib's ``TriMesh`` collection uses), so colours can vary per vertex (smooth shading,
heatmaps) or per face (flat shading) at the cost of a single C++ loop per frame. One
:class:`MeshRenderer` keeps one figure and re-uses it for every frame of a sequence.
"""
from __future__ import annotations

from typing import Literal, Sequence as Seq

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fc4dfs.benchmark.viz.camera import Camera  # noqa: E402

#: a light skin tone for plain meshes
SKIN = (0.86, 0.74, 0.66)
#: direction towards the key light, in view space (upper left, in front)
LIGHT = (-0.35, 0.45, 1.0)


def face_normals(view_verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals ``[F, 3]`` of triangles given view-space vertices ``[V, 3]``."""
    tri = view_verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def vertex_normals(face_n: np.ndarray, faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Unit vertex normals ``[V, 3]``: the mean of the adjacent faces' unit normals."""
    out = np.zeros((num_vertices, 3))
    for k in range(3):
        out += np.stack([np.bincount(faces[:, k], face_n[:, c], minlength=num_vertices) for c in range(3)], 1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def lambert(normals: np.ndarray, light: Seq[float] = LIGHT, ambient: float = 0.28) -> np.ndarray:
    """Two-sided Lambert intensity in [ambient, 1] (normals flipped towards the viewer)."""
    l_dir = np.asarray(light, dtype=np.float64)
    l_dir = l_dir / np.linalg.norm(l_dir)
    n = np.where(normals[:, 2:3] < 0, -normals, normals)
    return ambient + (1.0 - ambient) * np.clip(n @ l_dir, 0.0, 1.0)


class _Triangles(Artist):
    """Draws pre-sorted screen-space triangles with per-corner colours in one Agg call."""

    def __init__(self) -> None:
        super().__init__()
        self.verts: np.ndarray | None = None  # [N, 3, 2] data coordinates
        self.colors: np.ndarray | None = None  # [N, 3, 4] RGBA per corner

    def draw(self, renderer) -> None:  # noqa: ANN001 - matplotlib's renderer type
        if self.verts is None or not len(self.verts):
            return
        gc = renderer.new_gc()
        gc.set_linewidth(0)
        renderer.draw_gouraud_triangles(gc, self.verts, self.colors, self.axes.transData.frozen())
        gc.restore()


class MeshRenderer:
    """Renders meshes of one topology through one fixed :class:`Camera` into RGB arrays.

    ``height`` is the output panel height in pixels; ``supersample`` renders larger and averages
    down to smooth silhouettes. ``shading`` is ``"smooth"`` (per-vertex Lambert, interpolated) or
    ``"flat"`` (one Lambert value per triangle).
    """

    def __init__(self, faces: np.ndarray | None, camera: Camera, height: int = 240, supersample: int = 2,
                 color: Seq[float] = SKIN, background: Seq[float] = (1.0, 1.0, 1.0),
                 light: Seq[float] = LIGHT, ambient: float = 0.28,
                 shading: Literal["smooth", "flat"] = "smooth") -> None:
        if shading not in ("smooth", "flat"):
            raise ValueError(f"shading must be 'smooth' or 'flat', got {shading!r}")
        self.faces = None if faces is None else np.ascontiguousarray(faces, dtype=np.int64)
        self.camera = camera
        self.width, self.height = camera.image_size(height)
        self.supersample = max(1, int(supersample))
        self.color = np.asarray(color, dtype=np.float64)
        self.light, self.ambient, self.shading = light, ambient, shading
        s = self.supersample
        dpi = 100.0
        self._fig = Figure(figsize=(self.width * s / dpi, self.height * s / dpi), dpi=dpi,
                           facecolor=tuple(background))
        self._canvas = FigureCanvasAgg(self._fig)
        ax = self._fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(*camera.xlim)
        ax.set_ylim(*camera.ylim)
        ax.set_axis_off()
        ax.set_facecolor(tuple(background))
        self._tris = _Triangles()
        ax.add_artist(self._tris)
        self._lm = ax.scatter([], [], s=(2.2 * s) ** 2, c="#1f5fff", edgecolors="white",
                              linewidths=0.35 * s, zorder=3)

    def render(self, verts: np.ndarray | None, values: np.ndarray | None = None, cmap: Colormap | None = None,
               norm: Normalize | None = None, landmarks: np.ndarray | None = None,
               landmark_color: str = "#1f5fff", shade_floor: float = 0.6) -> np.ndarray:
        """One RGB image ``[H, W, 3]`` uint8 of ``verts`` ``[V, 3]``.

        ``values`` ``[V]`` colour the mesh through ``cmap``/``norm`` (a heatmap; shading is then
        softened to ``shade_floor``..1 so colours stay readable); ``landmarks`` ``[L, 3]`` are drawn
        on top. ``verts`` may be None to draw landmarks alone.
        """
        if verts is not None:
            if self.faces is None:
                raise ValueError("this renderer has no faces; pass verts=None to draw landmarks only")
            self._set_mesh(self.camera.to_view(verts), values, cmap, norm, shade_floor)
        else:
            self._tris.verts = None
        if landmarks is not None:
            lv = self.camera.to_view(landmarks)
            self._lm.set_offsets(lv[:, :2])
            self._lm.set_facecolor(landmark_color)
        else:
            self._lm.set_offsets(np.empty((0, 2)))
        self._canvas.draw()
        img = np.asarray(self._canvas.buffer_rgba())[..., :3]
        s = self.supersample
        if s > 1:
            h, w = img.shape[0] // s, img.shape[1] // s
            acc = np.zeros((h, w, 3), dtype=np.uint16)
            for dy in range(s):  # box filter as s*s strided adds: far cheaper than a float mean
                for dx in range(s):
                    acc += img[dy: h * s: s, dx: w * s: s]
            img = ((acc + (s * s) // 2) // (s * s)).astype(np.uint8)
        else:
            img = img.copy()
        return _fit(img, self.height, self.width)

    def _set_mesh(self, view: np.ndarray, values: np.ndarray | None, cmap: Colormap | None,
                  norm: Normalize | None, shade_floor: float) -> None:
        faces = self.faces
        fn = face_normals(view, faces)
        if self.shading == "smooth":
            shade = lambert(vertex_normals(fn, faces, len(view)), self.light, self.ambient)[faces]  # [F, 3]
        else:
            shade = np.repeat(lambert(fn, self.light, self.ambient)[:, None], 3, axis=1)
        if values is not None:
            if cmap is None or norm is None:
                raise ValueError("values need a cmap and a norm")
            vals = np.asarray(values, dtype=np.float64)
            if vals.shape != (len(view),):
                raise ValueError(f"values must be [V={len(view)}], got {vals.shape}")
            if self.shading == "flat":
                vals = np.repeat(vals[faces].mean(1, keepdims=True), 3, axis=1)
            else:
                vals = vals[faces]
            rgb = np.asarray(cmap(norm(vals)))[..., :3] * (shade_floor + (1.0 - shade_floor) * shade)[..., None]
        else:
            rgb = self.color * shade[..., None]
        order = np.argsort(view[faces][:, :, 2].mean(1), kind="stable")  # far to near
        colors = np.empty((len(faces), 3, 4))
        colors[..., :3] = np.clip(rgb, 0.0, 1.0)
        colors[..., 3] = 1.0
        self._tris.verts = view[faces[order]][:, :, :2]
        self._tris.colors = colors[order]

    def close(self) -> None:
        """Release the figure (renderers are cheap; closing matters only in long loops)."""
        self._fig.clear()


def _fit(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or pad (white) to exactly ``height x width`` (guards against off-by-one canvas sizes)."""
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    h, w = min(height, img.shape[0]), min(width, img.shape[1])
    out[:h, :w] = img[:h, :w]
    return out
