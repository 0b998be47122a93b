"""``fc4dfs-bench generate``: synthesise one expression sequence and export it in every format.

Components come from a finished run (``--run RUN_DIR``: its trained checkpoints) or are trained
here on the dataset's generator split at ``--budget`` through the component store that ``run`` uses
too (:func:`fc4dfs.zoo.store.train_or_load`), so a second call, or a call after a ``run`` of the
same configuration, is immediate.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fc4dfs.benchmark.commands import HELP
from fc4dfs.benchmark.commands.flags import (FPS_MAX, LENGTH_MAX, add_component_opts, add_dataset_flags, add_device,
                                             add_seed, dataset_options, first_identity, float_range, int_range)
from fc4dfs.benchmark.errors import UserError, writable_dir

if TYPE_CHECKING:
    import numpy as np

    from fc4dfs.benchmark.ownface import FaceFit
    from fc4dfs.datasets.base import Dataset, Topology
    from fc4dfs.plugins.contracts import Budget
    from fc4dfs.plugins.manager import Registry
    from fc4dfs.zoo.store import Trained


def add_parser(subparsers: argparse._SubParsersAction) -> list[str]:
    p = subparsers.add_parser(
        "generate", help=HELP["generate"],
        description="Generate a 4D expression: neutral face + label + length -> mesh sequence, written as "
                    "per-frame PLY and OBJ, one NPZ, a glTF 2.0 .glb morph-target animation (Blender, three.js, "
                    "game engines) and a preview strip + GIF. Components are loaded from --run or trained "
                    "on the dataset's training identities at --budget (cached for the next call).")
    p.add_argument("--gen", help="generator name (default: the run's, with --run)")
    p.add_argument("--dec", help="decoder name (default: the run's, with --run)")
    p.add_argument("--pipeline", help="direct pipeline name, in place of --gen/--dec (default: the run's, with --run)")
    p.add_argument("--intensity", metavar="X[,X...]",
                   help="expression intensity, 0 (neutral) .. 1 (the dataset's typical apex) .. 1.5; several "
                        "comma-separated values write one sequence each and a comparison strip (pipelines "
                        "that control intensity, fc_lstm/lstm with --gen-opt intensity=true, ddpm with its default "
                        "guidance=cfg) (default: 1, the label's typical apex)")
    p.add_argument("--timing", metavar="onset=..,apex=..,offset=..",
                   help="expression phases in relative time 0..1 (optional rest=..: back at neutral) "
                        "(pipelines that control timing, fc_lstm/lstm with --gen-opt timing=true) (default: the "
                        "label's typical phases)")
    p.add_argument("--kind", choices=("n2e", "n2e2n"),
                   help="sequence kind: neutral to apex (n2e) or neutral-apex-neutral (n2e2n), with the dataset's "
                        "typical phases of that kind; components that control timing can give a label either "
                        "kind, the others only the label's own (default: the label's typical phases)")
    p.add_argument("--interpolate", metavar="A,B",
                   help="instead of a sequence, interpolate the latent code between the apexes of labels A and B "
                        "(Potamias et al. 5.5) and write the meshes and a strip (pipelines with a latent code: "
                        "potamias) (default: off)")
    p.add_argument("--steps", type=int_range(2, 64, "a step count"), default=8,
                   help="with --interpolate: meshes from A to B, 2..64 (default: 8)")
    p.add_argument("--dataset", help="dataset name (default: the run's, else synthetic)")
    p.add_argument("--identity", help="identity whose neutral face to animate (default: the first test identity, "
                                      "as in dataset show)")
    p.add_argument("--from-neutral", type=Path, metavar="FILE",
                   help="neutral mesh to animate instead: OBJ, PLY or GLB of any topology, units and pose (the "
                        "dataset's template is registered to it; output on its own vertices, UVs and units), or "
                        "NPY / NPZ vertices with the dataset's topology (default: the identity's neutral)")
    p.add_argument("--landmarks-file", type=Path, metavar="FILE",
                   help="with --from-neutral: its 68 landmarks as vertex indices or points in the mesh's units "
                        "(.txt one per line, or .npy) (default: automatic alignment with a printed confidence)")
    p.add_argument("--units", choices=("mm", "cm", "m"),
                   help="with --from-neutral: the mesh's units (default: detected from the face's size)")
    p.add_argument("--blendshapes", action="store_true",
                   help="also export engine blendshapes: one morph target per label apex + non-negative weight "
                        "curves (GLB, CSV, JSON), with the reconstruction error (default: off)")
    p.add_argument("--label", help="expression label (default: none; one of --label or --text is required)")
    p.add_argument("--text", help="describe the expression instead of naming a label, e.g. \"from the neutral face "
                   "to a big smile\" (text control, Zou et al. Alg. 2; generators with generate_text: ddpm) "
                   "(default: none, use --label)")
    p.add_argument("--length", type=int_range(2, LENGTH_MAX, "a frame count"), default=None,
                   help=f"frames T, 2..{LENGTH_MAX} (default: 30, or the --known sequence's)")
    p.add_argument("--known", type=Path, metavar="FILE",
                   help="expression filling: a partial landmark sequence [T, L, 3] in mm to complete (.npy, or "
                        ".npz with 'landmarks' and optional 'mask' [T]); NaN frames are unknown (ddpm) "
                        "(default: none, generate from the label)")
    p.add_argument("--known-frames", metavar="LIST",
                   help="with --known: which frames are known, e.g. 0-9,29 (default: the file's mask or finite frames)")
    p.add_argument("--fps", type=float_range(0.0, FPS_MAX), default=None,
                   help=f"frame rate, (0, {FPS_MAX:g}] (default: the generator's)")
    p.add_argument("--out", type=Path, required=True, help="output folder (required)")
    p.add_argument("--run", type=Path, metavar="RUN_DIR",
                   help="load trained checkpoints from this run directory (default: train or use the cache)")
    p.add_argument("--budget", default="quick", choices=("smoke", "quick", "paper"),
                   help="training budget when not loading from --run (default: quick, minutes on a CPU)")
    p.add_argument("--budget-opt", action="append", metavar="KEY=VALUE",
                   help="override one training hyper-parameter, repeatable, e.g. epochs=50; the same trained "
                        "components as `run` with these overrides are reused (default: none)")
    add_seed(p)
    add_device(p)
    p.add_argument("--formats", default="ply,obj,npz,glb",
                   help="comma-separated subset of ply,obj,npz,glb (default: ply,obj,npz,glb)")
    p.add_argument("--morph", default="frames", choices=("frames", "basis"),
                   help="GLB morph targets: one per frame (lossless) or a PCA basis (compact) (default: frames)")
    p.add_argument("--basis", type=int_range(1, 256, "a basis size"), default=16,
                   help="basis size with --morph basis, 1..256 (default: 16)")
    p.add_argument("--no-preview", action="store_true", help="skip the preview PNG strip and GIF")
    add_component_opts(p)
    add_dataset_flags(p)
    return ["generate"]


# --------------------------------------------------------------------------- helpers
def read_neutral(path: Path, topology: "Topology") -> "np.ndarray":
    """Vertices ``[V, 3]`` of a neutral array file (.npy, .npz) on ``topology``; refuses another vertex
    count, naming the file. Mesh files go through :func:`fc4dfs.benchmark.ownface.load_own_face`."""
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"neutral mesh {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        verts = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            key = next((k for k in ("vertices", "neutral", "verts") if k in z.files), None)
            if key is None:
                raise UserError(f"{path} holds no 'vertices' array (has: {', '.join(z.files)})")
            verts = z[key]
            if verts.ndim == 3:  # an exported sequence: its first frame is the neutral
                verts = verts[0]
    else:
        raise UserError(f"neutral mesh {path}: unsupported file type {suffix!r} (use .obj, .ply, .glb, .npy or .npz)")
    verts = np.asarray(verts, dtype=np.float32)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise UserError(f"neutral mesh {path} must hold [V, 3] vertices, got shape {verts.shape}")
    if verts.shape[0] != topology.num_vertices:
        raise UserError(f"neutral mesh {path} has {verts.shape[0]} vertices; the dataset's topology "
                        f"{topology.hash} has {topology.num_vertices}")
    if not np.isfinite(verts).all():
        raise UserError(f"neutral mesh {path} contains NaN or Inf")
    return verts


def parse_frames(spec: str, length: int, flag: str = "--known-frames") -> list[int]:
    """Frame indices from ``"0-9,29,-1"`` (ranges inclusive, negatives count from the end)."""
    out: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            lo, _, hi = part.partition("-") if not part.startswith("-") else (part, "", "")
            ids = range(int(lo), int(hi) + 1) if hi else [int(lo)]
        except ValueError:
            raise UserError(f"{flag}: cannot read {part!r} (use e.g. 0-9,29)") from None
        for i in ids:
            j = i + length if i < 0 else i
            if not 0 <= j < length:
                raise UserError(f"{flag}: frame {i} is outside the sequence's {length} frames")
            out.add(j)
    if not out:
        raise UserError(f"{flag}: no frames given")
    return sorted(out)


def read_known(path: Path, frames: str | None, num_landmarks: int) -> tuple["np.ndarray", "np.ndarray"]:
    """A partial landmark sequence ``[T, L, 3]`` and its known-frame mask ``[T]`` from ``path``.

    Unknown frames may hold NaN (they are zeroed); ``frames`` (``--known-frames``) overrides the
    file's ``mask``, else the frames without NaN are the known ones.
    """
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"known sequence {path} not found")
    mask = None
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                key = next((k for k in ("landmarks", "known") if k in z.files), None)
                if key is None:
                    raise UserError(f"{path} holds no 'landmarks' array (has: {', '.join(z.files)})")
                seq = np.asarray(z[key], dtype=np.float32)
                mask = np.asarray(z["mask"], dtype=bool) if "mask" in z.files else None
        elif path.suffix.lower() == ".npy":
            seq = np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
        else:
            raise UserError(f"known sequence {path}: unsupported file type {path.suffix!r} (use .npy or .npz)")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read known sequence {path}: {e}") from None
    if seq.ndim != 3 or seq.shape[1:] != (num_landmarks, 3) or seq.shape[0] < 2:
        raise UserError(f"known sequence {path} must be [T >= 2, {num_landmarks}, 3] landmarks, got {seq.shape}")
    finite = np.isfinite(seq).all(axis=(1, 2))
    if frames is not None:
        mask = np.zeros(seq.shape[0], dtype=bool)
        mask[parse_frames(frames, seq.shape[0])] = True
    elif mask is None:
        mask = finite
    if mask.shape != (seq.shape[0],):
        raise UserError(f"known sequence {path}: 'mask' must have {seq.shape[0]} entries, got {mask.shape}")
    if (mask & ~finite).any():
        raise UserError(f"known sequence {path}: known frame(s) {np.flatnonzero(mask & ~finite).tolist()} "
                        "hold NaN or Inf")
    if not mask.any() or mask.all():
        raise UserError(f"known sequence {path}: {'no' if not mask.any() else 'every'} frame is known; "
                        "filling needs some known and some unknown frames")
    return np.where(mask[:, None, None], np.nan_to_num(seq), 0.0).astype(np.float32), mask


def trained(reg: "Registry", kind: str, name: str, dataset: "Dataset", budget: "Budget", seed: int,
            device: str = "cpu", progress: bool = True, options: dict[str, Any] | None = None) -> "Trained":
    """The registered ``kind`` component ``name`` (with ``options``) trained on ``dataset``'s generator split,
    through :func:`fc4dfs.zoo.store.train_or_load` (the store ``run`` uses too, so either reuses the
    other's training)."""
    from fc4dfs.benchmark.runner import instantiate
    from fc4dfs.zoo.store import train_or_load

    train_ids, _ = dataset.generator_split()
    return train_or_load(instantiate(reg, kind, name, options or {}), dataset, train_ids, budget, seed,
                         device=device, progress=progress)


def _run_checkpoint(run_dir: Path, kind: str) -> Path:
    folder = run_dir / "checkpoints"
    exact = folder / f"{kind}.safetensors"
    if exact.is_file():
        return exact
    found = sorted(folder.glob(f"{kind}*.safetensors"))
    if not found:
        raise FileNotFoundError(f"{run_dir} has no trained {kind} checkpoint ({exact} not found)")
    return found[0]


def _read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory?")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- command
def run(args: argparse.Namespace) -> int:
    import numpy as np

    from fc4dfs.benchmark.config import RunConfig, parse_options, validate_options
    from fc4dfs.benchmark.export import FORMATS, export_sequence, write_file
    from fc4dfs.benchmark.runner import load_dataset
    from fc4dfs.benchmark.ownface import export_blendshapes, to_user_output
    from fc4dfs.plugins.manager import registry

    progress = args.progress
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise UserError(f"--formats: unknown {bad or 'empty list'}; choose from {', '.join(FORMATS)}")
    if args.known_frames is not None and args.known is None:
        raise UserError("--known-frames needs --known FILE")
    if (args.landmarks_file is not None or args.units is not None) and args.from_neutral is None:
        raise UserError("--landmarks-file and --units need --from-neutral FILE")
    if args.interpolate is not None:
        if args.label is not None or args.text is not None:
            raise UserError("--interpolate A,B replaces --label/--text; drop them")
        args.label = _interpolation_labels(args.interpolate)[0]
    if (args.label is None) == (args.text is None):
        raise UserError("generate needs exactly one of --label or --text")
    if args.kind is not None and (args.text is not None or args.timing is not None):
        raise UserError("--kind needs --label and sets the phases itself: drop " +
                        ("--text" if args.text is not None else "--timing"))
    if args.text is not None and (not args.text.strip() or args.known is not None):
        raise UserError("--text must be a non-empty description and cannot be combined with --known")
    writable_dir(args.out, "--out")

    reg = registry()
    run_cfg = _read_run_config(args.run) if args.run is not None else {}
    names = _resolve_names(args, run_cfg)
    for kind, name in names.items():
        reg.get(kind, name)  # unknown names fail before any work
    if args.text is not None and ("generator" not in names
                                  or not reg.get("generator", names["generator"]).load().can_generate_text()):
        what = f"generator {names['generator']!r}" if "generator" in names else "a pipeline"
        raise UserError(f"--text: {what} cannot be conditioned on text (use --gen ddpm)")
    options = {"generator": parse_options(args.gen_opt, "--gen-opt"),
               "decoder": parse_options(args.dec_opt, "--dec-opt"),
               "pipeline": parse_options(args.pipeline_opt, "--pipeline-opt"),
               "dataset": dataset_options(args),
               "budget": parse_options(args.budget_opt, "--budget-opt")}
    if names["dataset"] == run_cfg.get("dataset"):
        options["dataset"] = {**run_cfg.get("dataset_options", {}), **options["dataset"]}
    # the same option checks as `run` (unknown keys with the closest one, ranges), before any work
    validate_options(reg, RunConfig(protocol="e2e", dataset=names["dataset"], generator=names.get("generator"),
                                    decoder=names.get("decoder"), budget=args.budget,
                                    generator_options=options["generator"], decoder_options=options["decoder"],
                                    dataset_options=options["dataset"], budget_overrides=options["budget"],
                                    pipeline=names.get("pipeline"), pipeline_options=options["pipeline"]))
    levels, timing = _controls(args, reg, names, options)
    if args.interpolate is not None:
        _check_interpolation(args, reg, names, levels, timing)

    t0 = time.perf_counter()
    dataset = load_dataset(names["dataset"], options["dataset"], reg, progress=progress)
    topo = dataset.topology
    for label in ([args.label] if args.interpolate is None else _interpolation_labels(args.interpolate)):
        if label is not None and label not in dataset.labels:
            flag = "--interpolate: " if args.interpolate is not None else ""
            raise UserError(f"{flag}label {label!r} not in dataset {names['dataset']!r}; labels: "
                            f"{', '.join(dataset.labels)}")
    if args.kind is not None:
        timing = _kind_timing(args, reg, names, options, dataset)
    identity, neutral, source, fit = _choose_neutral(args, dataset, names["dataset"])
    if "pipeline" in names and (args.known is not None or getattr(args, "blendshapes", False)):
        flag = "--known" if args.known is not None else "--blendshapes"
        raise UserError(f"{flag} needs a generator and decoder (--gen/--dec), not a pipeline")
    known, mask = _known_sequence(args, reg, names.get("generator", ""), topo.num_landmarks)
    length = known.shape[0] if known is not None else (args.length or 30)
    comps, loaded = _components(args, reg, names, options, dataset, progress)
    if args.interpolate is not None:
        return _generate_interpolation(args, comps["pipeline"], names, options, dataset, identity, neutral, source,
                                       int(length), loaded, formats, t0, fit)
    if "pipeline" in names:
        pipe = comps["pipeline"]
        fps = float(args.fps if args.fps is not None else pipe.default_fps)

        def direct(level: float | None) -> "np.ndarray":
            return pipe.synthesize(neutral[None], [args.label], int(length), fps=fps, seed=args.seed, intensity=level,
                                   timing=timing)[0]

        who = {"pipeline": names["pipeline"], "dataset": names["dataset"]}
        return _generate_direct(args, direct, names["pipeline"], who, options, dataset, identity, source, int(length),
                                fps, levels, timing, loaded, formats, t0, fit)
    gen, dec = comps["generator"], comps["decoder"]

    fps = float(args.fps if args.fps is not None else getattr(gen, "default_fps", 30.0))
    nlm = topo.landmarks(neutral[None])
    controls = {"timing": timing} if timing is not None else {}
    if levels is not None:
        def chain(level: float) -> "np.ndarray":
            lms = gen.generate(nlm, [args.label], int(length), fps=fps, seed=args.seed, intensity=level, **controls)
            return dec.decode(neutral[None], nlm, lms)[0]

        who = {"generator": names["generator"], "decoder": names["decoder"], "dataset": names["dataset"]}
        return _generate_direct(args, chain, f"{names['generator']} + {names['decoder']}", who, options, dataset,
                                identity, source, int(length), fps, levels, timing, loaded, formats, t0, fit)
    if known is not None:
        landmarks = gen.fill(known[None], mask[None], [args.label], seed=args.seed,
                             harmonize_iters=int(gen.options.get("harmonize_iters", 1)))
    elif args.text is not None:
        landmarks = gen.generate_text(nlm, [args.text], length, fps=fps, seed=args.seed)
    else:
        landmarks = gen.generate(nlm, [args.label], length, fps=fps, seed=args.seed, **controls)
    meshes = dec.decode(neutral[None], nlm, landmarks)[0]
    landmarks = landmarks[0]
    if not np.isfinite(meshes).all():
        raise UserError(f"{names['generator']} + {names['decoder']} produced NaN or Inf vertices "
                        "(under-trained? try --budget quick)")

    meta = {"generator": names["generator"], "decoder": names["decoder"], "dataset": names["dataset"],
            "dataset_hash": dataset.fingerprint, "topology": topo.hash, "identity": identity,
            "neutral_source": source, "label": args.label, "text": args.text, "length": int(length), "fps": fps,
            "timing": timing, "kind": args.kind,
            "seed": int(args.seed), "budget": None if args.run is not None else args.budget,
            "budget_overrides": None if args.run is not None else options["budget"],
            "options": options, "checkpoints": loaded, "run": str(args.run) if args.run is not None else None}
    if args.known is not None:
        meta["known"] = {"file": str(args.known), "frames": [int(i) for i in np.flatnonzero(mask)]}
    out: Path = args.out
    what = args.label if args.label is not None else "text"
    stem = f"{identity}_{what}".replace("/", "_").replace(" ", "_")
    if fit is not None:
        meta["own_face"] = fit.info
    user = to_user_output(fit, meshes, landmarks, topo)
    written = export_sequence(out, user["frames"], user["faces"], fps, landmarks=user["landmarks"], metadata=meta,
                              formats=formats, stem=stem, lmk_face_idx=user["lmk_face_idx"],
                              lmk_bary=user["lmk_bary"], morph=args.morph, n_basis=args.basis,
                              texcoords=user["texcoords"], units=user["units"])
    if args.blendshapes:
        written["blendshapes"], meta["blendshape_error_mm"] = export_blendshapes(
            out, stem, gen, dec, topo, neutral, list(dataset.labels), meshes, length, fps, args.seed, fit)
    if not args.no_preview:
        written["preview"] = _preview(out, user["frames"], user["landmarks"], user["faces"], fps,
                                      f"{names['generator']} + {names['decoder']}: {identity} / {args.label or args.text} "
                                      f"({length} frames, {fps:g} fps)")
    return _finish(out, meta, written, t0)


def _finish(out: Path, meta: dict[str, Any], written: dict[str, list[Path]], t0: float) -> int:
    """Write ``generate.json`` (the metadata and every file written), list the files, return exit code 0."""
    from fc4dfs.benchmark.export import write_file

    summary = {**meta, "files": {k: [str(p) for p in v] for k, v in written.items()}}
    write_file(out / "generate.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    for kind, files in written.items():
        shown = f"{files[0]} ... {files[-1]} ({len(files)} files)" if len(files) > 2 else ", ".join(map(str, files))
        print(f"{kind}: {shown}")
    print(f"done in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def _known_sequence(args: argparse.Namespace, reg: "Registry", generator: str,
                    num_landmarks: int) -> tuple["np.ndarray | None", "np.ndarray | None"]:
    """The ``--known`` partial sequence and mask (checked before any training), or ``(None, None)``."""
    if args.known is None:
        return None, None
    if not reg.load("generator", generator).can_fill():
        fillers = sorted(n for n in reg.names("generator") if reg.load("generator", n).can_fill())
        raise UserError(f"--known: generator {generator!r} cannot fill a partial sequence; "
                        f"generators that can: {', '.join(fillers) or 'none'}")
    known, mask = read_known(args.known, args.known_frames, num_landmarks)
    if args.length is not None and args.length != known.shape[0]:
        raise UserError(f"--length {args.length} differs from the {known.shape[0]} frames of {args.known}")
    return known, mask


def _able(reg: "Registry", control: str) -> str:
    """The components that can honour ``control``, for error messages."""
    gens = sorted(n for n in reg.names("generator") if control in getattr(reg.load("generator", n), "controls", ()))
    pipes = sorted(n for n in reg.names("pipeline") if control in getattr(reg.load("pipeline", n), "controls", ()))
    named = [f"{n} (--gen-opt {control}=true)" if control in reg.load("generator", n).declared_options() else n
             for n in gens]
    parts = ([f"generators {', '.join(named)}"] if gens else []) + \
        ([f"pipelines {', '.join(pipes)} (--pipeline NAME)"] if pipes else [])
    return "; ".join(parts) or "none"


def _active_controls(reg: "Registry", names: dict[str, str], options: dict[str, dict]) -> tuple[str, frozenset[str]]:
    """(``generator 'x'`` or ``pipeline 'y'``, the controls it honours with the given options)."""
    from fc4dfs.benchmark.runner import instantiate

    kind = "pipeline" if "pipeline" in names else "generator"
    comp = instantiate(reg, kind, names[kind], options[kind])
    active = comp.active_controls() if kind == "generator" else frozenset(comp.controls)
    return f"{kind} {names[kind]!r}", active


def _refuse_control(flag: str, control: str, reg: "Registry", names: dict[str, str], options: dict[str, dict],
                    why: str = "") -> None:
    """UserError for ``flag`` when the chosen component does not honour ``control``, naming those that can."""
    who, active = _active_controls(reg, names, options)
    if control in active:
        return
    kind = "pipeline" if "pipeline" in names else "generator"
    cls = reg.load(kind, names[kind])
    if kind == "generator" and control in getattr(cls, "controls", ()):
        switch = (f"--gen-opt {control}=true" if control in cls.declared_options()
                  else "other options (see its documentation)")
        raise UserError(f"{flag}: {who} controls {control} only when trained with {switch}{why}")
    raise UserError(f"{flag}: {who} cannot control {control}{why}; components that can: {_able(reg, control)}")


def _controls(args: argparse.Namespace, reg: "Registry", names: dict[str, str], options: dict[str, dict]
              ) -> tuple[list[float] | None, dict[str, float] | None]:
    """``--intensity`` levels and ``--timing`` phases, checked (and refused for components that cannot
    honour them with their options, naming those that can) before any work."""
    from fc4dfs.datasets.phases import parse_timing
    from fc4dfs.plugins.contracts import INTENSITY_RANGE

    levels = timing = None
    if args.intensity is not None:
        try:
            levels = [float(x) for x in str(args.intensity).split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--intensity expects numbers (e.g. 0.5 or 0.25,0.5,1,1.5), got {args.intensity!r}") from None
        lo, hi = INTENSITY_RANGE
        if not levels or any(not lo <= x <= hi for x in levels):
            raise UserError(f"--intensity must be in [{lo:g}, {hi:g}] (0 = neutral, 1 = typical apex), "
                            f"got {args.intensity!r}")
    if args.timing is not None:
        try:
            timing = parse_timing(args.timing)
        except ValueError as e:
            raise UserError(f"--timing: {e}") from None
    for flag, control, given in (("--intensity", "intensity", levels), ("--timing", "timing", timing)):
        if given is not None:
            _refuse_control(flag, control, reg, names, options)
    return levels, timing


def _kind_timing(args: argparse.Namespace, reg: "Registry", names: dict[str, str], options: dict[str, dict],
                 dataset: "Dataset") -> dict[str, float] | None:
    """The phases for ``--kind``: the mean measured onset/apex/offset/rest of the dataset's training sequences
    of the label and kind (of that kind over every label when the label has none), or None when the
    kind is the label's only one (nothing to choose). A component without timing control gets a
    one-line error when the label also (or only) comes in the other kind."""
    import numpy as np

    from fc4dfs.datasets.phases import PHASES, measure_timing

    kind, label = args.kind, args.label
    kinds = sorted({s.kind for s in dataset.sequences if s.label == label})
    _, active = _active_controls(reg, names, options)
    if "timing" not in active:
        if kinds == [kind]:
            return None
        _refuse_control(f"--kind {kind}", "timing", reg, names, options,
                        f", so it cannot choose the kind of label {label!r} (in {dataset.name}: {', '.join(kinds)})")
    train = set(dataset.generator_split()[0])
    pool = [s for s in dataset.sequences if s.identity in train and s.kind == kind]
    own = [s for s in pool if s.label == label] or pool
    if not own:
        raise UserError(f"--kind {kind}: dataset {dataset.name!r} has no {kind} training sequences to take the "
                        "phases from")
    measured = [measure_timing(np.asarray(s.frames, np.float32)) for s in own]
    return {k: float(np.mean([m[k] for m in measured])) for k in (*PHASES, "rest")}


def _interpolation_labels(spec: str) -> tuple[str, str]:
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise UserError(f"--interpolate expects two different labels A,B, got {spec!r}")
    return parts[0], parts[1]


def _check_interpolation(args: argparse.Namespace, reg: "Registry", names: dict[str, str],
                         levels: list[float] | None, timing: dict[str, float] | None) -> None:
    """Refuse ``--interpolate`` for components without a latent code, and flags it does not combine with."""
    able = sorted(n for n in reg.names("pipeline") if reg.load("pipeline", n).can_interpolate())
    if "pipeline" not in names:
        raise UserError(f"--interpolate: generator {names['generator']!r} has no latent expression code to "
                        f"interpolate; pipelines that have one: {', '.join(able) or 'none'} (--pipeline NAME)")
    if not reg.load("pipeline", names["pipeline"]).can_interpolate():
        raise UserError(f"--interpolate: pipeline {names['pipeline']!r} has no latent expression code to "
                        f"interpolate; pipelines that have one: {', '.join(able) or 'none'}")
    for flag, given in (("--intensity", levels), ("--timing", timing), ("--kind", args.kind),
                        ("--known", args.known), ("--from-neutral", None)):
        if given is not None:
            raise UserError(f"{flag} does not combine with --interpolate (it interpolates between the two apexes)")


def _generate_interpolation(args: argparse.Namespace, pipe: Any, names: dict[str, str], options: dict[str, dict],
                            dataset: "Dataset", identity: str, neutral: "np.ndarray", source: str, length: int,
                            loaded: dict[str, str], formats: list[str], t0: float, fit: Any = None) -> int:
    """``generate --interpolate A,B``: the neutral and ``--steps`` meshes decoded from the latent codes
    interpolated between the apexes of A and B (Potamias et al. 5.5), exported as one mesh sequence
    (frame 0 the neutral) and drawn as a strip."""
    import numpy as np

    from fc4dfs.benchmark.export import export_sequence, write_file
    from fc4dfs.benchmark.ownface import to_user_output

    a, b = _interpolation_labels(args.interpolate)
    alphas = np.linspace(0.0, 1.0, int(args.steps))
    meshes = pipe.interpolate(neutral, a, b, alphas, length=length)
    if not np.isfinite(meshes).all():
        raise UserError(f"{names['pipeline']} produced NaN or Inf vertices (under-trained? try --budget quick)")
    topo = dataset.topology
    landmarks = topo.landmarks(meshes)
    out: Path = args.out
    stem = f"{identity}_{a}_to_{b}".replace("/", "_").replace(" ", "_")
    meta = {"pipeline": names["pipeline"], "dataset": names["dataset"], "dataset_hash": dataset.fingerprint,
            "topology": topo.hash, "identity": identity, "neutral_source": source, "interpolate": [a, b],
            "alphas": [float(x) for x in alphas], "frames": "neutral, then one mesh per alpha",
            "seed": int(args.seed), "budget": None if args.run is not None else args.budget, "options": options,
            "checkpoints": loaded, "run": str(args.run) if args.run is not None else None}
    user = to_user_output(fit, meshes, landmarks, topo)
    written = export_sequence(out, user["frames"], user["faces"], 1.0, landmarks=user["landmarks"], metadata=meta,
                              formats=formats, stem=stem, lmk_face_idx=user["lmk_face_idx"],
                              lmk_bary=user["lmk_bary"], morph=args.morph, n_basis=args.basis,
                              texcoords=user["texcoords"], units=user["units"])
    if not args.no_preview:
        from fc4dfs.benchmark.viz import Track, render_strip

        path = out / "interpolation.png"
        render_strip([Track(f"{a} -> {b}", user["frames"], user["landmarks"])], user["faces"], path,
                     frames=list(range(len(meshes))), col_labels=["neutral"] + [f"alpha {x:.2g}" for x in alphas],
                     title=f"{names['pipeline']}: {identity}, latent interpolation {a} (alpha 0) -> {b} (alpha 1)")
        written["preview"] = [path]
    return _finish(out, meta, written, t0)


def _generate_direct(args: argparse.Namespace, synth: Any, method: str, who: dict[str, str], options: dict[str, dict],
                     dataset: "Dataset", identity: str, source: str, length: int, fps: float,
                     levels: list[float] | None, timing: dict[str, float] | None, loaded: dict[str, str],
                     formats: list[str], t0: float, fit: Any = None) -> int:
    """``generate`` with a pipeline, or with ``--intensity``: one sequence per requested intensity (one
    without ``--intensity``) from ``synth(level) -> meshes [T, V, 3]``, each exported to ``OUT`` (or
    ``OUT/intensity-X`` when several) plus a comparison strip. ``method`` names the components in
    messages and titles, ``who`` in the metadata."""
    import numpy as np

    from fc4dfs.benchmark.export import export_sequence, write_file
    from fc4dfs.benchmark.ownface import to_user_output

    topo = dataset.topology
    out: Path = args.out
    stem = f"{identity}_{args.label}".replace("/", "_").replace(" ", "_")
    written: dict[str, list[Path]] = {}
    tracks = []
    for level in levels or [None]:
        meshes = synth(level)
        if not np.isfinite(meshes).all():
            raise UserError(f"{method} produced NaN or Inf vertices (under-trained? try --budget quick)")
        landmarks = topo.landmarks(meshes)
        folder = out / f"intensity-{level:g}" if levels and len(levels) > 1 else out
        meta = {**who, "dataset_hash": dataset.fingerprint,
                "topology": topo.hash, "identity": identity, "neutral_source": source, "label": args.label,
                "length": length, "fps": fps, "seed": int(args.seed), "intensity": level, "timing": timing,
                "kind": args.kind,
                "budget": None if args.run is not None else args.budget, "options": options,
                "checkpoints": loaded, "run": str(args.run) if args.run is not None else None}
        if fit is not None:
            meta["own_face"] = fit.info
        user = to_user_output(fit, meshes, landmarks, topo)
        for kind, files in export_sequence(folder, user["frames"], user["faces"], fps, landmarks=user["landmarks"],
                                           metadata=meta, formats=formats, stem=stem,
                                           lmk_face_idx=user["lmk_face_idx"], lmk_bary=user["lmk_bary"],
                                           morph=args.morph, n_basis=args.basis, texcoords=user["texcoords"],
                                           units=user["units"]).items():
            written.setdefault(kind, []).extend(files)
        tracks.append((level, user["frames"], user["landmarks"], user["faces"]))
    if not args.no_preview:
        from fc4dfs.benchmark.viz import Track, render_strip

        title = f"{method}: {identity} / {args.label} ({length} frames, {fps:g} fps)"
        if len(tracks) > 1:
            render_strip([Track(f"intensity {lv:g}", m, lm) for lv, m, lm, _ in tracks], tracks[0][3],
                         out / "intensities.png", n_frames=8, fps=fps, title=title)
            written["preview"] = [out / "intensities.png"]
        else:
            written["preview"] = _preview(out, tracks[0][1], tracks[0][2], tracks[0][3], fps, title)
    return _finish(out, {**who, "intensities": levels, "timing": timing, "kind": args.kind}, written, t0)


def _resolve_names(args: argparse.Namespace, run_cfg: dict[str, Any]) -> dict[str, str]:
    """Generator and decoder (or pipeline) and dataset names from the flags, falling back on the run's config."""
    pipeline = args.pipeline or (run_cfg.get("pipeline") if not (args.gen or args.dec) else None)
    if pipeline:
        if args.gen or args.dec:
            raise UserError("--pipeline replaces the generator and decoder; drop --gen/--dec")
        names = {"pipeline": pipeline, "dataset": args.dataset or run_cfg.get("dataset") or "synthetic"}
        if args.run is not None and run_cfg.get("pipeline") != pipeline:
            raise UserError(f"--pipeline {pipeline!r} differs from the run's {run_cfg.get('pipeline')!r} "
                            f"({args.run / 'config.json'})")
        return names
    names = {"generator": args.gen or run_cfg.get("generator"), "decoder": args.dec or run_cfg.get("decoder"),
             "dataset": args.dataset or run_cfg.get("dataset") or "synthetic"}
    if not names["generator"] or not names["decoder"]:
        raise UserError("generate needs --gen NAME and --dec NAME (or --run RUN_DIR of a run that has both)")
    if args.run is not None:
        for kind, flag in (("generator", "--gen"), ("decoder", "--dec"), ("dataset", "--dataset")):
            theirs = run_cfg.get(kind)
            if theirs and names[kind] != theirs:
                raise UserError(f"{flag} {names[kind]!r} differs from the run's {theirs!r} "
                                f"({args.run / 'config.json'})")
    return names


def _choose_neutral(args: argparse.Namespace, dataset: "Dataset",
                    ds_name: str) -> tuple[str, "np.ndarray", str, "FaceFit | None"]:
    """(identity name, neutral vertices [V, 3] on the dataset's topology, where the neutral came from,
    the fit to the user's own mesh when --from-neutral is a mesh file)."""
    if args.from_neutral is not None:
        from fc4dfs.benchmark.ownface import load_own_face

        fit = load_own_face(args.from_neutral, dataset, args.landmarks_file, args.units)
        neutral = fit.registered if fit is not None else read_neutral(args.from_neutral, dataset.topology)
        return args.identity or args.from_neutral.stem, neutral, str(args.from_neutral), fit
    identity = args.identity or first_identity(dataset)
    if identity not in dataset.identities:
        more = " ..." if len(dataset.identities) > 12 else ""
        raise UserError(f"identity {identity!r} not in dataset {ds_name!r}; identities: "
                        f"{', '.join(dataset.identities[:12])}{more}")
    return identity, dataset.neutral(identity), f"{ds_name}:{identity}", None


def _components(args: argparse.Namespace, reg: "Registry", names: dict[str, str], options: dict[str, dict],
                dataset: "Dataset", progress: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The trained generator and decoder, or pipeline (from --run, the cache, or trained now), by kind, and
    where each came from."""
    comps: dict[str, Any] = {}
    loaded: dict[str, str] = {}
    for kind in [k for k in ("generator", "decoder", "pipeline") if k in names]:
        name = names[kind]
        if args.run is not None:
            path = _run_checkpoint(args.run, kind)
            comps[kind] = reg.load(kind, name).load(path, dataset.topology, device=args.device)
            loaded[kind] = f"{path} (from run)"
        else:
            from fc4dfs.plugins.contracts import Budget

            print(f"{kind} {name}: training at budget {args.budget} (stored for later calls) ...")
            got = trained(reg, kind, name, dataset, Budget(args.budget, options["budget"]), args.seed,
                          args.device, progress=progress, options=options[kind])
            comps[kind] = got.component
            loaded[kind] = f"{got.path} ({'store' if got.cached else 'trained now'})"
        print(f"{kind} {name}: {loaded[kind]}")
    return comps, loaded


def _preview(out: Path, meshes: "np.ndarray", landmarks: "np.ndarray", faces: "np.ndarray", fps: float,
             title: str) -> list[Path]:
    """A PNG strip and a GIF of the generated sequence."""
    from fc4dfs.benchmark.viz import Track, render_animation, render_strip

    tracks = [Track("generated", meshes, landmarks)]
    render_strip(tracks, faces, out / "preview.png", n_frames=8, fps=fps, title=title)
    gif = render_animation(tracks, faces, out / "preview.gif", fps=fps, title=title)
    return [out / "preview.png", gif]
