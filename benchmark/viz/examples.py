"""Pictures of a finished run: ``RUN_DIR/examples.npz`` -> ``RUN_DIR/render/``.

Per example: a strip (ground truth, prediction, error heatmap over evenly spaced frames) and an
animated GIF of the three side by side. The heatmap scale depends on the ground truth only (see
:meth:`Example.scale`), so the pictures of different methods on one test sequence compare.
Several runs evaluated on the same test sequences can be compared in one FC-4DFS Fig. 6 heatmap
grid (:func:`compare_runs`).
"""
from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence as Seq

import numpy as np

from fc4dfs.benchmark.errors import UserError
from fc4dfs.datasets.base import resample_frames
from fc4dfs.benchmark.viz.figures import (PRED_LANDMARKS, Track, animation_frames, frame_indices, render_heatmaps,
                                          render_strip, vertex_errors)
from fc4dfs.benchmark.viz.animate import save_gif, save_mp4
from fc4dfs.benchmark.viz.layout import ColorScale, nice_ceil


@dataclass
class Example:
    """One evaluated test sequence from a run's ``examples.npz`` (missing arrays are None)."""

    index: int
    identity: str
    label: str
    fps: float
    method: str
    gt_mesh: np.ndarray | None
    pred_mesh: np.ndarray | None
    gt_lm: np.ndarray | None
    pred_lm: np.ndarray | None

    resampled_from: int | None = None

    def __post_init__(self) -> None:
        """Show a prediction of another length on the ground truth's time axis (same duration)."""
        gt = self.gt_mesh if self.gt_mesh is not None else self.gt_lm
        pred = self.pred_mesh if self.pred_mesh is not None else self.pred_lm
        if gt is None or pred is None or len(gt) == len(pred) or len(gt) < 2:
            return
        self.resampled_from = len(pred)
        if self.pred_mesh is not None:
            self.pred_mesh = resample_frames(np.asarray(self.pred_mesh, dtype=np.float32), len(gt))
        if self.pred_lm is not None:
            self.pred_lm = resample_frames(np.asarray(self.pred_lm, dtype=np.float32), len(gt))

    @property
    def title(self) -> str:
        note = f" (prediction resampled from {self.resampled_from} frames)" if self.resampled_from else ""
        return f"{self.method} — {self.identity} / {self.label}{note}"

    def scale(self) -> ColorScale | None:
        """The heatmap scale, fixed by the ground truth alone so that every method evaluated on this
        sequence is drawn on the same scale: 0 to half the sequence's largest vertex displacement
        (99th percentile over vertices and frames, rounded up to a round number)."""
        if self.gt_mesh is None or self.pred_mesh is None:
            return None
        motion = np.linalg.norm(self.gt_mesh - self.gt_mesh[:1], axis=-1)
        return ColorScale(vmax=nice_ceil(0.5 * float(np.percentile(motion, 99))))

    def tracks(self) -> list[Track]:
        """Ground truth, prediction and (when both meshes exist) the error heatmap."""
        out = []
        if self.gt_mesh is not None or self.gt_lm is not None:
            out.append(Track("ground truth", self.gt_mesh, self.gt_lm))
        if self.pred_mesh is not None or self.pred_lm is not None:
            out.append(Track("prediction", self.pred_mesh, self.pred_lm, landmark_color=PRED_LANDMARKS))
        if self.gt_mesh is not None and self.pred_mesh is not None:
            t = min(len(self.gt_mesh), len(self.pred_mesh))
            out.append(Track("error", self.pred_mesh[:t], errors=vertex_errors(self.pred_mesh[:t], self.gt_mesh[:t])))
        return out


def load_examples(run_dir: str | Path) -> tuple[np.ndarray | None, list[Example]]:
    """Faces and examples of a run directory; a clear error names the missing file."""
    run_dir = Path(run_dir)
    npz_path, json_path = run_dir / "examples.npz", run_dir / "examples.json"
    for p in (npz_path, json_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: is {run_dir} a run directory with saved examples?")
    try:
        meta = json.loads(json_path.read_text())
        if not isinstance(meta, list):
            raise ValueError("expected a list of examples")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{json_path}: not a readable examples file ({e})") from None
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{npz_path}: not a readable examples file ({e})") from None
    faces = arrays.get("faces")
    for k, a in arrays.items():
        if k != "faces" and not k.startswith(("gt_mesh_", "pred_mesh_", "gt_lm_", "pred_lm_")):
            continue
        ok = (a.ndim == 2 and a.shape[1] == 3 and a.dtype.kind in "iu") if k == "faces" else (
            a.ndim == 3 and a.shape[2] == 3 and a.dtype.kind == "f")
        if not ok:
            raise UserError(f"{npz_path}: array {k!r} has shape {a.shape} and dtype {a.dtype}, "
                            f"expected {'[F, 3] integers' if k == 'faces' else '[T, N, 3] floats'}")
    out = []
    for m in meta:
        try:
            i = int(m["index"])
            out.append(Example(i, str(m.get("identity", "")), str(m.get("label", "")),
                               float(m.get("fps") or 30.0), str(m.get("method", run_dir.name)),
                               arrays.get(f"gt_mesh_{i}"), arrays.get(f"pred_mesh_{i}"), arrays.get(f"gt_lm_{i}"),
                               arrays.get(f"pred_lm_{i}")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{json_path}: unreadable example entry {m!r} ({type(e).__name__}: {e})") from None
    return faces, out


def render_examples(run_dir: Path, max_examples: int = 2, time_budget_s: float = 20, gif: bool = True,
                    mp4: bool = False, height: int = 180, out_dir: Path | None = None) -> list[Path]:
    """Render up to ``max_examples`` of a run into ``RUN_DIR/render/``; returns the files written.

    Strips come first (they are cheap); animations are thinned (frame stride) or skipped so the
    whole call stays near ``time_budget_s`` seconds.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    faces, examples = load_examples(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "render"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    chosen = [e for e in examples if e.tracks()][: max(0, int(max_examples))]
    per_panel = 0.05
    for ex in chosen:
        if time.perf_counter() - t0 > time_budget_s:
            break
        tracks = ex.tracks()
        faces_ex = faces if any(t.meshes is not None for t in tracks) else None
        t1 = time.perf_counter()
        idx = frame_indices(min(t.length for t in tracks), 6)
        path = out_dir / f"example_{ex.index}_strip.png"
        render_strip(tracks, faces_ex, path, frames=idx, fps=ex.fps, title=ex.title, height=height,
                     scale=ex.scale())
        written.append(path)
        per_panel = max(per_panel, (time.perf_counter() - t1) / (len(idx) * len(tracks)))
    for ex in chosen if (gif or mp4) else []:
        tracks = ex.tracks()
        length = min(t.length for t in tracks)
        left = time_budget_s - (time.perf_counter() - t0)
        cost_all = per_panel * length * len(tracks) * 1.3 + 0.5
        if left <= 0 or left < cost_all / 8:
            break
        stride = max(1, int(np.ceil(cost_all / left)))
        faces_ex = faces if any(t.meshes is not None for t in tracks) else None
        images = animation_frames(tracks, faces_ex, title=ex.title, height=height, stride=stride,
                                  scale=ex.scale(),
                                  footer="blue dots: ground-truth landmarks, red dots: predicted")
        if gif:
            written.append(save_gif(images, out_dir / f"example_{ex.index}.gif", ex.fps / stride))
        if mp4:
            p = save_mp4(images, out_dir / f"example_{ex.index}.mp4", ex.fps / stride)
            if p is not None:
                written.append(p)
    return written


def compare_runs(run_dirs: Seq[Path], out_path: Path, n_frames: int = 4, example: int | None = None,
                 height: int = 180) -> Path:
    """FC-4DFS Fig. 6 for several runs: rows = frames of one test sequence they all evaluated,
    columns = ground truth then one error heatmap per run, all on one labelled mm colour scale.

    Sequences are matched by identity, label, frame rate and length, and their ground truth must
    agree; ``example`` picks one by its index in the first run (default: the first shared one).
    """
    if not run_dirs:
        raise ValueError("compare_runs needs at least one run directory")
    runs: list[tuple[Path, np.ndarray | None, dict[tuple, Example]]] = []
    for rd in run_dirs:
        faces, exs = load_examples(rd)
        by_key: dict[tuple, Example] = {}
        for e in exs:
            if e.pred_mesh is not None and e.gt_mesh is not None:
                by_key.setdefault((e.identity, e.label, round(e.fps, 3), len(e.gt_mesh)), e)
        runs.append((Path(rd), faces, by_key))
    faces = runs[0][1]
    for rd, f, _ in runs[1:]:
        if f is None or faces is None or f.shape != faces.shape or not np.array_equal(f, faces):
            raise ValueError(f"{rd} uses another mesh topology than {runs[0][0]}")
    keys = [k for k in runs[0][2] if all(k in by_key for _, _, by_key in runs[1:])]
    if not keys:
        raise ValueError("the runs share no test sequence with predicted meshes (same identity, label, fps, length)")
    key = keys[0] if example is None else next((k for k in keys if runs[0][2][k].index == example), None)
    if key is None:
        raise ValueError(f"example {example} is not among the sequences the runs share")
    ref = runs[0][2][key]
    preds: dict[str, np.ndarray] = {}
    for rd, _, by_key in runs:
        e = by_key[key]
        if not np.allclose(e.gt_mesh, ref.gt_mesh, atol=1e-3):
            raise ValueError(f"{rd}: the ground truth of {ref.identity}/{ref.label} differs from {runs[0][0]}'s")
        name = e.method if e.method not in preds else f"{e.method} ({rd.name})"
        preds[name] = e.pred_mesh
    idx = frame_indices(len(ref.gt_mesh), n_frames)
    chosen = {m: p[idx] for m, p in preds.items()}
    render_heatmaps(ref.gt_mesh[idx], chosen, faces, out_path,
                    row_labels=[f"frame {i}\n{i / ref.fps:.2f} s" for i in idx],
                    title=f"{ref.identity} / {ref.label}: per-vertex error", height=height,
                    scale=ColorScale.for_values([vertex_errors(p, ref.gt_mesh[idx]) for p in chosen.values()]))
    return Path(out_path)
