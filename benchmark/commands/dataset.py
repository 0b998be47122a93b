"""``fc4dfs-bench dataset show|info NAME``: look at a dataset.

``show`` writes a PNG: a few identities' neutral faces with their landmarks, one sequence's
frames (front and three-quarter view) with its motion curve, and the apex of every label for
that identity. ``info`` prints the dataset's size, version and cache location.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.commands.flags import add_dataset_flags, dataset_options, first_identity, int_range
from fc4dfs.benchmark.errors import UserError

#: iBUG-68 polylines (start, end inclusive, closed)
IBUG_PARTS = [(0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
              (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True)]
SKIN = (0.93, 0.78, 0.68)


def add_parser(subparsers: Any) -> list[str]:
    p = subparsers.add_parser("dataset", help=HELP["dataset"],
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    show = sub.add_parser("show", help="write a PNG of faces, landmarks and one sequence")
    show.add_argument("name", help="registered dataset name, e.g. synthetic")
    show.add_argument("--identity",
                      help="identity whose sequence is shown (default: the first test identity, as in generate)")
    show.add_argument("--label", help="expression label shown (default: the dataset's first label)")
    show.add_argument("--kind", choices=("n2e", "n2e2n"), help="prefer a sequence of this kind (default: any)")
    show.add_argument("--frames", type=int_range(2, 64, "a frame count"), default=6,
                      help="frames of the sequence to draw, 2..64 (default: 6)")
    show.add_argument("--identities", type=int_range(1, 64, "a count"), default=6,
                      help="neutral faces to draw, 1..64 (default: 6)")
    show.add_argument("--no-gallery", action="store_true", help="skip the apex-of-every-label rows")
    show.add_argument("--out", type=Path, help="PNG path (default: ./<dataset>_<identity>_<label>.png)")
    add_dataset_flags(show, deprecated=("--option", "-o"))
    info = sub.add_parser("info", help="print the dataset's size, version and cache location")
    info.add_argument("name", help="registered dataset name, e.g. synthetic")
    add_dataset_flags(info, deprecated=("--option", "-o"))
    return ["dataset"]


def run(args: argparse.Namespace) -> int:
    from fc4dfs.benchmark.errors import writable_file

    if getattr(args, "out", None) is not None:
        writable_file(args.out, "--out")
    from fc4dfs.benchmark.runner import load_dataset

    ds = load_dataset(args.name, dataset_options(args), progress=args.progress)
    if args.dataset_command == "info":
        print(describe(ds))
        return 0
    out = show(ds, identity=args.identity, label=args.label, kind=args.kind, n_frames=args.frames,
               n_identities=args.identities, gallery=not args.no_gallery, out=args.out)
    print(out)
    return 0




def describe(ds) -> str:
    """A short multi-line summary of a dataset."""
    import numpy as np

    lengths = np.array([s.length for s in ds.sequences])
    fps = sorted({float(s.fps) for s in ds.sequences})
    kinds = sorted({s.kind for s in ds.sequences})
    topo = ds.topology
    lines = [
        f"dataset      {ds.name} (version {ds.version}, fingerprint {ds.fingerprint})",
        f"topology     {topo.hash}: {topo.num_vertices} vertices, {topo.num_faces} faces, "
        f"{topo.num_landmarks} landmarks",
        f"identities   {len(ds.identities)}: {', '.join(ds.identities[:6])}{' ...' if len(ds.identities) > 6 else ''}",
        f"labels       {len(ds.labels)}: {', '.join(ds.labels[:12])}{' ...' if len(ds.labels) > 12 else ''}",
        f"sequences    {len(ds.sequences)} ({', '.join(kinds)}), {int(lengths.sum())} frames, "
        f"lengths {int(lengths.min())}-{int(lengths.max())}, fps {', '.join(f'{f:g}' for f in fps)}",
    ]
    tr, te = ds.generator_split()
    lines.append(f"split        train {len(tr)} / test {len(te)} identities; 4 identity folds")
    path = getattr(ds, "cache_path", None)
    if path is not None:
        lines.append(f"cache        {path}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ rendering
def _pick_sequence(ds, identity: str | None, label: str | None, kind: str | None):
    identity = identity or first_identity(ds)
    if identity not in ds.identities:
        raise UserError(f"identity {identity!r} not in dataset {ds.name!r} "
                        f"(identities: {', '.join(ds.identities[:8])}{' ...' if len(ds.identities) > 8 else ''})")
    label = label or ds.labels[0]
    if label not in ds.labels:
        raise UserError(f"label {label!r} not in dataset {ds.name!r} (labels: {', '.join(ds.labels)})")
    cands = [s for s in ds.sequences if s.identity == identity and s.label == label]
    if not cands:
        raise UserError(f"dataset {ds.name!r} has no sequence of {identity!r} performing {label!r}")
    preferred = [s for s in cands if s.kind == kind] if kind else cands
    return (preferred or cands)[0]


def draw_mesh(ax, verts, faces, landmarks=None, yaw: float = 0.0, title: str | None = None,
              extent: tuple | None = None) -> None:
    """Lambert-shaded orthographic render of a mesh (painter's order, back faces culled)."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    centre = verts.mean(0)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    v = (verts - centre) @ rot.T
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    light = np.array([0.35, 0.45, 1.0]) / np.linalg.norm([0.35, 0.45, 1.0])
    shade = np.clip(n @ light, 0.0, 1.0)
    order = np.argsort(tri[:, :, 2].mean(1))
    order = order[n[order, 2] > 0]
    colours = (0.12 + 0.88 * shade[order])[:, None] * np.array(SKIN)
    ax.add_collection(PolyCollection(tri[order][:, :, :2], facecolors=colours, edgecolors=colours,
                                     linewidths=0.2))
    if landmarks is not None:
        lm = (landmarks - centre) @ rot.T
        if len(lm) == 68:
            for a, b, closed in IBUG_PARTS:
                idx = list(range(a, b + 1)) + ([a] if closed else [])
                ax.plot(lm[idx, 0], lm[idx, 1], "-", color="tab:red", lw=0.5, alpha=0.6)
        ax.plot(lm[:, 0], lm[:, 1], ".", color="tab:red", ms=1.6, alpha=0.9)
    if extent is None:
        extent = (v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max())
    pad = 0.04 * (extent[3] - extent[2])
    ax.set_xlim(extent[0] - pad, extent[1] + pad)
    ax.set_ylim(extent[2] - pad, extent[3] + pad)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)


def _extent(frames, yaw: float):
    import numpy as np

    centre = frames[0].mean(0)
    c, s = np.cos(yaw), np.sin(yaw)
    v = (frames - centre) @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    return (v[..., 0].min(), v[..., 0].max(), v[..., 1].min(), v[..., 1].max())


def show(ds, identity: str | None = None, label: str | None = None, kind: str | None = None,
         n_frames: int = 6, n_identities: int = 6, gallery: bool = True, out: Path | None = None,
         dpi: int = 110) -> Path:
    """Render the overview PNG of ``ds`` and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    seq = _pick_sequence(ds, identity, label, kind)
    faces = ds.topology.faces
    frames = np.asarray(seq.frames, dtype=np.float32)
    lms = seq.landmarks
    n_frames = max(2, min(n_frames, seq.length))
    motion = np.linalg.norm(lms - lms[:1], axis=-1).mean(-1)
    apex = int(np.argmax(motion))
    picks = sorted(set(np.linspace(0, seq.length - 1, n_frames).round().astype(int).tolist()) | {apex})
    if len(picks) > n_frames:  # keep the apex, drop the picked frame nearest to it
        others = [p for p in picks if p != apex]
        others.remove(min(others, key=lambda p: abs(p - apex)))
        picks = sorted(others + [apex])
    cols = max(len(picks), 6)
    gal_labels = list(ds.labels) if gallery else []
    gal_rows = int(np.ceil(len(gal_labels) / cols)) if gal_labels else 0
    ids = ds.identities[:max(1, n_identities)]
    heights = [1.25, 1.0, 1.0, 0.55] + [1.0] * gal_rows
    fig = plt.figure(figsize=(2.2 * cols, 2.4 * sum(heights)))
    grid = fig.add_gridspec(len(heights), cols, height_ratios=heights, hspace=0.4, wspace=0.04,
                            left=0.06, right=0.99, top=1 - 0.35 / sum(heights), bottom=0.02)
    fig.suptitle(f"{ds.name} v{ds.version} ({ds.fingerprint}) - {len(ds.identities)} identities, "
                 f"{len(ds.labels)} labels, {len(ds.sequences)} sequences, "
                 f"{ds.topology.num_vertices} vertices", fontsize=10)

    # row 1: neutral faces of a few identities with their landmarks
    ids = ids[:cols]
    for k, ident in enumerate(ids):
        ax = fig.add_subplot(grid[0, k])
        neutral = np.asarray(ds.neutral(ident), dtype=np.float32)
        draw_mesh(ax, neutral, faces, ds.topology.landmarks(neutral), title=f"{ident} (neutral)")

    # rows 2-3: the sequence, front and three-quarter view, common framing
    for row, yaw in ((1, 0.0), (2, 0.75)):
        ext = _extent(frames[picks], yaw)
        for j, f in enumerate(picks):
            ax = fig.add_subplot(grid[row, j])
            title = f"t={f / seq.fps:.2f}s (frame {f})" + (" apex" if f == apex else "") if row == 1 else None
            draw_mesh(ax, frames[f], faces, lms[f], yaw=yaw, title=title, extent=ext)
    # row 4: motion curve
    ax = fig.add_subplot(grid[3, :])
    t = np.arange(seq.length) / seq.fps
    ax.plot(t, motion, "-", color="tab:blue", lw=1.2)
    ax.plot(t[picks], motion[picks], "o", color="tab:red", ms=4)
    ax.set_xlabel("seconds", fontsize=8)
    ax.set_ylabel("mean landmark\nmotion (mm)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{seq.identity} / {seq.label}: {seq.kind}, {seq.length} frames at {seq.fps:g} fps",
                 fontsize=9)

    # gallery: apex of every label for this identity, turned a little to show depth
    for k, lab in enumerate(gal_labels):
        cands = [s for s in ds.sequences if s.identity == seq.identity and s.label == lab]
        ax = fig.add_subplot(grid[4 + k // cols, k % cols])
        if not cands:
            ax.axis("off")
            continue
        s = cands[0]
        lm = s.landmarks
        a = int(np.argmax(np.linalg.norm(lm - lm[:1], axis=-1).mean(-1)))
        draw_mesh(ax, np.asarray(s.frames[a], dtype=np.float32), faces, None, yaw=0.4, title=f"{lab} (apex)")

    if out is None:
        out = Path(f"{ds.name}_{seq.identity}_{seq.label}.png".replace("/", "_"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out.resolve()
