"""``fc4dfs-bench retarget``: one face's expression sequence drives another face through the decoder.

The source's landmark displacements from its first frame are identity-normalised and added to the
target face's neutral landmarks; the decoder turns them into the target's mesh sequence (on the
dataset's topology, or on the target's own topology, units and pose through the own-face fit).

Identity normalisation: the similarity transform (rotation and uniform scale, Umeyama 1991) that
best maps the source's neutral landmarks onto the target's is applied to every displacement, so a
smaller face makes proportionally smaller motions in its own orientation; expression-specific shape
differences between the two faces are not modelled.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.commands.flags import FPS_MAX, add_dataset_flags, add_device, add_seed, dataset_options, \
    float_range
from fc4dfs.benchmark.errors import UserError, writable_dir

if TYPE_CHECKING:
    import numpy as np

    from fc4dfs.datasets.base import Topology


def add_parser(subparsers: argparse._SubParsersAction) -> list[str]:
    p = subparsers.add_parser(
        "retarget", help=HELP["retarget"],
        description="Expression transfer: the landmark motion of --source (identity-normalised) drives the "
                    "face --to through a trained decoder; written like generate's output (PLY, OBJ, NPZ, GLB).")
    p.add_argument("--source", type=Path, required=True, metavar="SEQ",
                   help="source sequence (required): an NPZ with 'vertices' [T, V, 3] on the dataset's topology or "
                        "'landmarks' [T, 68, 3] (units from its metadata, else mm), or a folder of per-frame PLYs "
                        "on the dataset's topology")
    p.add_argument("--to", type=Path, required=True, metavar="FACE",
                   help="target neutral face (required): OBJ, PLY or GLB of any topology, or NPY/NPZ on the "
                        "dataset's")
    p.add_argument("--landmarks-file", type=Path, metavar="FILE",
                   help="the target mesh's 68 landmarks, vertex indices or points (default: automatic alignment)")
    p.add_argument("--units", choices=("mm", "cm", "m"),
                   help="the target mesh's units (default: detected from the face's size)")
    p.add_argument("--dec", help="decoder name (default: the run's, with --run)")
    p.add_argument("--dataset", help="dataset the decoder is trained on (default: the run's, else synthetic)")
    add_dataset_flags(p)
    p.add_argument("--run", type=Path, metavar="RUN_DIR",
                   help="load the trained decoder from this run (default: train at --budget, stored for later calls)")
    p.add_argument("--budget", default="quick", choices=("smoke", "quick", "paper"),
                   help="training budget when not loading from --run (default: quick; stored for later calls)")
    add_seed(p, what="training seed")
    add_device(p)
    p.add_argument("--fps", type=float_range(0.0, FPS_MAX), default=None,
                   help=f"frame rate, (0, {FPS_MAX:g}] (default: the source's, else 30)")
    p.add_argument("--out", type=Path, required=True, help="output folder (required)")
    p.add_argument("--formats", default="ply,obj,npz,glb",
                   help="comma-separated subset of ply,obj,npz,glb (default: all four)")
    return ["retarget"]


def read_source(path: Path, topology: "Topology") -> tuple["np.ndarray", float | None]:
    """Source landmarks ``[T, L, 3]`` in mm and its fps (or None) from an NPZ or a PLY folder."""
    import numpy as np

    if path.is_dir():
        from fc4dfs.datasets.ply import PlyError, PlyFrameReader

        files = sorted(path.glob("*.ply"))
        if len(files) < 2:
            raise UserError(f"--source {path}: a folder needs at least 2 .ply frames, found {len(files)}")
        try:
            reader = PlyFrameReader(topology.faces, topology.num_vertices)
            frames = np.stack([reader.read(f) for f in files])
        except PlyError as e:
            raise UserError(f"--source: {e}") from None
        return topology.landmarks(frames.astype(np.float32)), None
    if not path.is_file():
        raise FileNotFoundError(f"source sequence {path} not found")
    if path.suffix.lower() != ".npz":
        raise UserError(f"--source {path}: use an .npz sequence or a folder of .ply frames")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["metadata"])) if "metadata" in z.files else {}
            fps = float(z["fps"]) if "fps" in z.files else None
            if "vertices" in z.files and z["vertices"].ndim == 3 and z["vertices"].shape[1] == topology.num_vertices:
                lms = topology.landmarks(np.asarray(z["vertices"], np.float32))
            elif "landmarks" in z.files:
                from fc4dfs.datasets.realdata import UNITS

                lms = np.asarray(z["landmarks"], np.float32) * UNITS.get(meta.get("units", "mm"), 1.0)
            else:
                raise UserError(f"--source {path}: needs 'vertices' [T, {topology.num_vertices}, 3] or 'landmarks' "
                                f"[T, {topology.num_landmarks}, 3] (has: {', '.join(z.files)})")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read source sequence {path}: {e}") from None
    if lms.ndim != 3 or lms.shape[1:] != (topology.num_landmarks, 3) or len(lms) < 2 or not np.isfinite(lms).all():
        raise UserError(f"--source {path}: landmarks must be finite [T >= 2, {topology.num_landmarks}, 3], "
                        f"got {lms.shape}")
    return lms, fps


def similarity(src: "np.ndarray", dst: "np.ndarray") -> tuple[float, "np.ndarray"]:
    """Scale ``s`` and rotation ``R`` of the least-squares similarity ``dst ~ s R src + t`` (Umeyama 1991)."""
    import numpy as np

    a, b = src - src.mean(0), dst - dst.mean(0)
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    return float((sig * np.diag(d)).sum() / (a ** 2).sum()), r


def retarget_landmarks(source: "np.ndarray", target_neutral: "np.ndarray") -> tuple["np.ndarray", dict]:
    """Target landmarks ``[T, L, 3]``: ``target_neutral + s R (source_t - source_0)`` (see module doc)."""
    import numpy as np

    src = np.asarray(source, np.float64)
    s, r = similarity(src[0], np.asarray(target_neutral, np.float64))
    out = target_neutral[None] + s * (src - src[:1]) @ r.T
    return out.astype(np.float32), {"scale": s, "rotation_deg": float(np.degrees(np.arccos(
        np.clip((np.trace(r) - 1) / 2, -1, 1))))}


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from fc4dfs.benchmark.commands.generate import _read_run_config, _run_checkpoint, read_neutral, trained
    from fc4dfs.benchmark.export import FORMATS, export_sequence, write_file
    from fc4dfs.benchmark.ownface import load_own_face, to_user_output
    from fc4dfs.plugins.manager import registry

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise UserError(f"--formats: unknown {bad or 'empty list'}; choose from {', '.join(FORMATS)}")
    writable_dir(args.out, "--out")
    t0 = time.perf_counter()
    run_cfg = _read_run_config(args.run) if args.run is not None else {}
    dec_name = args.dec or run_cfg.get("decoder")
    if not dec_name:
        raise UserError("retarget needs --dec NAME (or --run RUN_DIR of a run with a decoder)")
    ds_name = args.dataset or run_cfg.get("dataset") or "synthetic"
    reg = registry()
    reg.get("decoder", dec_name)
    from fc4dfs.benchmark.runner import load_dataset

    ds_options = dataset_options(args)
    if ds_name == run_cfg.get("dataset"):
        ds_options = {**run_cfg.get("dataset_options", {}), **ds_options}
    dataset = load_dataset(ds_name, ds_options, reg, progress=args.progress)
    topo = dataset.topology
    source, src_fps = read_source(args.source, topo)
    fit = load_own_face(args.to, dataset, args.landmarks_file, args.units)
    neutral = fit.registered if fit is not None else read_neutral(args.to, topo)
    if args.run is not None:
        path = _run_checkpoint(args.run, "decoder")
        dec = reg.load("decoder", dec_name).load(path, topo, device=args.device)
        origin = f"{path} (from run)"
    else:
        print(f"decoder {dec_name}: training at budget {args.budget} (stored for later calls) ...")
        from fc4dfs.plugins.contracts import Budget

        got = trained(reg, "decoder", dec_name, dataset, Budget(args.budget), args.seed, args.device)
        dec, origin = got.component, f"{got.path} ({'store' if got.cached else 'trained now'})"
    print(f"decoder {dec_name}: {origin}")
    nlm = topo.landmarks(neutral[None])
    landmarks, norm = retarget_landmarks(source, nlm[0])
    meshes = dec.decode(neutral[None], nlm, landmarks[None])[0]
    if not np.isfinite(meshes).all():
        raise UserError(f"decoder {dec_name} produced NaN or Inf vertices (under-trained? try --budget quick)")
    fps = float(args.fps or src_fps or 30.0)
    meta = {"command": "retarget", "source": str(args.source), "target": str(args.to), "decoder": dec_name,
            "dataset": ds_name, "dataset_hash": dataset.fingerprint, "topology": topo.hash, "fps": fps,
            "length": int(len(landmarks)), "identity_normalisation": {"method": "similarity (Umeyama)", **norm},
            "checkpoint": origin}
    if fit is not None:
        meta["own_face"] = fit.info
    user = to_user_output(fit, meshes, landmarks, topo)
    stem = f"{args.to.stem}_from_{args.source.stem}".replace(" ", "_")
    written = export_sequence(args.out, user["frames"], user["faces"], fps, landmarks=user["landmarks"],
                              metadata=meta, formats=formats, stem=stem, lmk_face_idx=user["lmk_face_idx"],
                              lmk_bary=user["lmk_bary"], texcoords=user["texcoords"], units=user["units"])
    summary = {**meta, "files": {k: [str(p) for p in v] for k, v in written.items()}}
    write_file(args.out / "retarget.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    print(f"identity normalisation: scale {norm['scale']:.3f}, rotation {norm['rotation_deg']:.1f} deg")
    for kind, files in written.items():
        shown = f"{files[0]} ... {files[-1]} ({len(files)} files)" if len(files) > 2 else ", ".join(map(str, files))
        print(f"{kind}: {shown}")
    print(f"done in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0
