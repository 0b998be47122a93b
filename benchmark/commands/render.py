"""``fc4dfs-bench render RUN_DIR``: pictures of a run's evaluated examples (or compare runs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.commands.flags import float_range, int_range
from fc4dfs.benchmark.errors import UserError, writable_dir, writable_file


def add_parser(subparsers: argparse._SubParsersAction) -> list[str]:
    p = subparsers.add_parser(
        "render", help=HELP["render"],
        description="Render the evaluated test sequences a run saved (RUN_DIR/examples.npz): ground truth "
                    "beside the prediction over evenly spaced frames, per-vertex error heatmaps on a shared "
                    "mm scale, and an animation. With several RUN_DIRs and --compare, draw one FC-4DFS "
                    "Fig. 6 grid: a shared test sequence, one heatmap column per run.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run directory (from `run`)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default RUN_DIR/render; with --compare: a PNG path, "
                        "default ./compare.png)")
    p.add_argument("--max-examples", type=int_range(1, 1000, "a count"), default=4,
                   help="examples per run, 1..1000 (default: 4)")
    p.add_argument("--time-budget", type=float_range(0.0, 86400.0), default=120.0,
                   help="seconds per run, (0, 86400]; animations are thinned to fit (default: 120)")
    p.add_argument("--height", type=int_range(32, 4096, "a pixel count"), default=200,
                   help="panel height in pixels, 32..4096 (default: 200)")
    p.add_argument("--no-gif", action="store_true", help="skip the GIF animations")
    p.add_argument("--mp4", action="store_true", help="also write MP4 (needs ffmpeg or imageio-ffmpeg)")
    p.add_argument("--compare", action="store_true",
                   help="one heatmap grid comparing the runs on a test sequence they share")
    p.add_argument("--example", type=int_range(0, None, "an example index"), default=None,
                   help="with --compare: which example index (default: the first the runs share)")
    p.add_argument("--frames", type=int_range(1, 64, "a frame count"), default=4,
                   help="with --compare: rows (frames) to show, 1..64 (default: 4)")
    return ["render"]


def run(args: argparse.Namespace) -> int:
    from fc4dfs.benchmark import viz

    for rd in args.run_dirs:
        if not rd.is_dir():
            raise UserError(f"run directory {rd} does not exist")
    if args.compare:
        out = args.out or Path("compare.png")
        if out.suffix.lower() != ".png":
            out = out / "compare.png"
        writable_file(out, "--out")
        try:
            path = viz.compare_runs(args.run_dirs, out, n_frames=args.frames, example=args.example,
                                    height=args.height)
        except ValueError as e:
            raise UserError(str(e)) from None
        print(path)
        return 0
    if args.mp4 and viz.ffmpeg_executable() is None:
        print("note: no ffmpeg found (pip install imageio-ffmpeg); writing no MP4")
    for rd in args.run_dirs:
        writable_dir(args.out if args.out is not None else rd / "render", "--out")
    for rd in args.run_dirs:
        out_dir = args.out if args.out is not None and len(args.run_dirs) == 1 else (
            args.out / rd.name if args.out is not None else None)
        files = viz.render_examples(rd, max_examples=args.max_examples, time_budget_s=args.time_budget,
                                    gif=not args.no_gif, mp4=args.mp4, height=args.height, out_dir=out_dir)
        if not files:
            print(f"{rd}: nothing rendered (no example with meshes or landmarks)")
        for f in files:
            print(f)
    return 0
