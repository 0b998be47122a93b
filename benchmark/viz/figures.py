"""Figures: frame strips, side-by-side animations and per-vertex error heatmaps (FC-4DFS Fig. 6)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence as Seq

import numpy as np

from fc4dfs.benchmark.viz.animate import save_gif, save_mp4, save_png
from fc4dfs.benchmark.viz.camera import Camera
from fc4dfs.benchmark.viz.layout import ColorScale, PanelGrid, progress_bar
from fc4dfs.benchmark.viz.raster import MeshRenderer

GT_LANDMARKS = "#1f5fff"
PRED_LANDMARKS = "#e8262a"


@dataclass
class Track:
    """One labelled sequence to draw: meshes and/or landmarks, optionally per-vertex errors.

    With ``errors`` (``[T, V]``, mm) the meshes are drawn as a heatmap on a shared colour scale.
    """

    label: str
    meshes: np.ndarray | None = None  # [T, V, 3]
    landmarks: np.ndarray | None = None  # [T, L, 3]
    errors: np.ndarray | None = None  # [T, V]
    landmark_color: str = GT_LANDMARKS

    def __post_init__(self) -> None:
        if self.meshes is None and self.landmarks is None:
            raise ValueError(f"track {self.label!r} has neither meshes nor landmarks")
        for what, arr, nd in (("meshes", self.meshes, 3), ("landmarks", self.landmarks, 3), ("errors", self.errors, 2)):
            if arr is not None and np.ndim(arr) != nd:
                raise ValueError(f"track {self.label!r}: {what} must be {nd}-d, got shape {np.shape(arr)}")
        if self.errors is not None and self.meshes is None:
            raise ValueError(f"track {self.label!r}: errors need meshes to be drawn on")

    @property
    def length(self) -> int:
        return int((self.meshes if self.meshes is not None else self.landmarks).shape[0])

    def render(self, renderer: MeshRenderer, t: int, scale: ColorScale | None) -> np.ndarray:
        mesh = None if self.meshes is None else np.asarray(self.meshes[t])
        lm = None if self.landmarks is None else np.asarray(self.landmarks[t])
        if self.errors is not None:
            if scale is None:
                raise ValueError("an error track needs a colour scale")
            return renderer.render(mesh, values=self.errors[t], cmap=scale.cmap, norm=scale.norm, landmarks=lm,
                                   landmark_color=self.landmark_color)
        return renderer.render(mesh, landmarks=lm, landmark_color=self.landmark_color)


def vertex_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-vertex Euclidean distance ``[..., V]`` (mm) between ``pred`` and ``gt`` ``[..., V, 3]``."""
    pred, gt = np.asarray(pred, dtype=np.float32), np.asarray(gt, dtype=np.float32)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    return np.linalg.norm(pred - gt, axis=-1)


def frame_indices(length: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``length`` frames, first and last included."""
    n = max(1, min(int(n), int(length)))
    if n == 1:
        return [0]
    return sorted({int(round(x)) for x in np.linspace(0, length - 1, n)})


def camera_for(tracks: Seq[Track], azimuth: float = 0.0, elevation: float = 0.0) -> Camera:
    """One camera framing every mesh and landmark of every track, over all frames."""
    return Camera.framing([a for t in tracks for a in (t.meshes, t.landmarks) if a is not None],
                          azimuth=azimuth, elevation=elevation)


def _scale_for(tracks: Seq[Track], scale: ColorScale | None) -> ColorScale | None:
    errs = [t.errors for t in tracks if t.errors is not None]
    if scale is not None or not errs:
        return scale
    return ColorScale.for_values(errs)


def _error_rows(tracks: Seq[Track]) -> tuple[int, int] | None:
    rows = [i for i, t in enumerate(tracks) if t.errors is not None]
    return (min(rows), max(rows)) if rows else None


def render_strip(tracks: Seq[Track], faces: np.ndarray | None, path: str | Path | None = None, n_frames: int = 6,
                 frames: Seq[int] | None = None, fps: float | None = None, title: str | None = None,
                 height: int = 180, scale: ColorScale | None = None, azimuth: float = 0.0,
                 elevation: float = 0.0, col_labels: Seq[str] | None = None) -> np.ndarray:
    """A strip: one row per track, one column per chosen frame, one fixed camera; saved if ``path``.

    Frames are ``frames`` or ``n_frames`` spread over the shortest track. Heatmap rows share one
    labelled colour scale (``scale`` or one fitted to their errors). Columns are captioned with the
    frame and its time, or ``col_labels`` (one per column).
    """
    tracks = list(tracks)
    if not tracks:
        raise ValueError("render_strip needs at least one track")
    length = min(t.length for t in tracks)
    idx = list(frames) if frames is not None else frame_indices(length, n_frames)
    if any(i < 0 or i >= length for i in idx):
        raise ValueError(f"frame indices {idx} outside [0, {length})")
    cam = camera_for(tracks, azimuth, elevation)
    renderer = MeshRenderer(faces, cam, height=height)
    scale = _scale_for(tracks, scale)
    if col_labels is not None and len(col_labels) != len(idx):
        raise ValueError(f"col_labels has {len(col_labels)} entries for {len(idx)} columns")
    col_labels = list(col_labels) if col_labels is not None else [
        f"frame {i}\n{i / fps:.2f} s" if fps else f"frame {i}" for i in idx]
    grid = PanelGrid(len(tracks), len(idx), renderer.width, renderer.height, title=title,
                     row_labels=[t.label for t in tracks], col_labels=col_labels, scale=scale,
                     colorbar_rows=_error_rows(tracks))
    panels = [[t.render(renderer, i, scale) for i in idx] for t in tracks]
    img = grid.compose(panels)
    if path is not None:
        save_png(img, path)
    return img


def animation_frames(tracks: Seq[Track], faces: np.ndarray | None, title: str | None = None, height: int = 220,
                     scale: ColorScale | None = None, stride: int = 1, azimuth: float = 0.0,
                     elevation: float = 0.0, footer: str | None = None) -> list[np.ndarray]:
    """Frames of an animation with the tracks side by side (one camera, one colour scale)."""
    tracks = list(tracks)
    length = min(t.length for t in tracks)
    cam = camera_for(tracks, azimuth, elevation)
    renderer = MeshRenderer(faces, cam, height=height)
    scale = _scale_for(tracks, scale)
    grid = PanelGrid(1, len(tracks), renderer.width, renderer.height, title=title,
                     col_labels=[t.label for t in tracks], scale=scale, footer=footer)
    out = []
    for i in range(0, length, max(1, int(stride))):
        frac = i / max(1, length - 1)
        out.append(grid.compose([[progress_bar(t.render(renderer, i, scale), frac) for t in tracks]]))
    if (length - 1) % max(1, int(stride)):  # always end on the last frame
        out.append(grid.compose([[progress_bar(t.render(renderer, length - 1, scale), 1.0) for t in tracks]]))
    return out


def render_animation(tracks: Seq[Track], faces: np.ndarray | None, path: str | Path, fps: float,
                     title: str | None = None, height: int = 220, scale: ColorScale | None = None,
                     stride: int = 1, **kw) -> Path | None:
    """An animated GIF (``.gif``) or MP4 (``.mp4``) of the tracks side by side at ``fps / stride``.

    Returns None for MP4 when no ffmpeg encoder is available.
    """
    path = Path(path)
    images = animation_frames(tracks, faces, title=title, height=height, scale=scale, stride=stride, **kw)
    rate = fps / max(1, int(stride))
    if path.suffix.lower() == ".gif":
        return save_gif(images, path, rate)
    if path.suffix.lower() == ".mp4":
        return save_mp4(images, path, rate)
    raise ValueError(f"animation path {path} must end in .gif or .mp4")


def render_heatmaps(gt: np.ndarray, preds: Mapping[str, np.ndarray], faces: np.ndarray,
                    path: str | Path | None = None, row_labels: Seq[str] | None = None, title: str | None = None,
                    scale: ColorScale | None = None, height: int = 200, show_gt: bool = True,
                    azimuth: float = 0.0, elevation: float = 0.0) -> np.ndarray:
    """Per-vertex error heatmaps of several methods side by side (FC-4DFS Fig. 6 layout).

    ``gt`` is ``[N, V, 3]`` (N rows: frames or examples), each ``preds[method]`` the same shape.
    Column titles carry each method's mean error; all panels share one labelled mm scale.
    """
    gt = np.asarray(gt, dtype=np.float32)
    if gt.ndim != 3:
        raise ValueError(f"gt must be [N, V, 3], got {gt.shape}")
    if not preds:
        raise ValueError("render_heatmaps needs at least one method's predictions")
    errs = {m: vertex_errors(p, gt) for m, p in preds.items()}
    scale = scale or ColorScale.for_values(list(errs.values()))
    tracks = ([Track("ground truth", gt)] if show_gt else []) + [
        Track(m, np.asarray(p, dtype=np.float32), errors=errs[m]) for m, p in preds.items()]
    cam = camera_for(tracks, azimuth, elevation)
    renderer = MeshRenderer(faces, cam, height=height)
    col_labels = (["ground truth"] if show_gt else []) + [f"{m}\nmean {errs[m].mean():.2f} mm" for m in preds]
    n = gt.shape[0]
    labels = list(row_labels) if row_labels is not None else None
    grid = PanelGrid(n, len(tracks), renderer.width, renderer.height, title=title, row_labels=labels,
                     col_labels=col_labels, scale=scale)
    img = grid.compose([[t.render(renderer, r, scale) for t in tracks] for r in range(n)])
    if path is not None:
        save_png(img, path)
    return img
