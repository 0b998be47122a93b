"""Shared machinery of the real-data adapters (CoMA, Aligned CoMA, Florence4D).

A real dataset lies in ``<root>/<identity>/<label>/*.ply`` (FLAME meshes, metres). Loading:

1. resolve the root (option, else environment variable) and the landmark embedding;
2. scan the folder (natural sort at every level) and open the preprocessed store in the cache if
   it was built from exactly these files (names, sizes, mtimes), else build it
   (:mod:`fc4dfs.datasets.realcache`: streamed, resumable, never half-valid);
3. build the :class:`Topology` from the store's faces (those of the dataset's first PLY) and the
   embedding, checking that they fit, and wrap the memory-mapped frames as sequences.

The neutral mesh of an identity is frame 0 of its first sequence (natural order of the labels).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from fc4dfs.datasets.base import Dataset, Sequence, Topology
from fc4dfs.datasets.landmarks import FLAME_URL, LANDMARKS_ENV, LandmarkEmbedding, load_landmark_embedding
from fc4dfs.datasets.ply import PlyError, read_ply
from fc4dfs.datasets.realcache import (STORE_FORMAT, FrameStore, RealDataError, build_from_ply,
                                       folders_unchanged, natural_key, open_store, record_folders, scan_layout)
from fc4dfs.datasets.storage import cache_dir, stable_hash

#: bump when the parsing or the store layout changes what a store holds
READER_VERSION = "1"
UNITS = {"m": 1000.0, "cm": 10.0, "mm": 1.0}
#: bounding-box diagonal (mm) a face or head mesh may have (CoMA/FLAME heads span about 200-400 mm)
FACE_EXTENT_MM = (50.0, 1000.0)
TYPICAL_FACE_MM = 300.0
VERIFY_MODES = ("auto", "stat", "folders", "none")
#: above this many files, ``verify="auto"`` checks folder mtimes instead of every file
AUTO_STAT_LIMIT = 100_000


@dataclass(frozen=True)
class RealDatasetInfo:
    """What differs between the adapters: names, where to get the data, layout and defaults."""

    name: str
    title: str
    root_env: str
    root_flag: str
    url: str
    layout: str
    default_fps: float
    kind: str = "n2e2n"


# --------------------------------------------------------------------------- options
def as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise RealDataError(f"option {what} must be true or false, got {value!r}")


def as_lengths(value: Any) -> tuple[int, ...]:
    """``25``, ``"20,25,30"`` or ``[20, 25, 30]`` -> a tuple of lengths >= 2."""
    items: Iterable[Any]
    if isinstance(value, (int, np.integer)):
        items = [value]
    elif isinstance(value, str):
        items = [t for t in value.replace(" ", "").split(",") if t]
    else:
        items = list(value)
    try:
        lengths = tuple(int(v) for v in items)
    except (TypeError, ValueError):
        raise RealDataError(f"option lengths must be integers (e.g. 20,25,30), got {value!r}") from None
    if not lengths or min(lengths) < 2:
        raise RealDataError(f"option lengths must be integers >= 2, got {value!r}")
    return lengths


def refuse_unknown_options(name: str, unknown: dict, factory: Any) -> None:
    """Raise a one-line error listing the factory's options when ``unknown`` is not empty."""
    if unknown:
        import inspect

        known = [p.name for p in inspect.signature(factory).parameters.values() if p.kind != p.VAR_KEYWORD]
        raise RealDataError(f"dataset {name!r} has no option(s) {sorted(unknown)}; its options are: "
                            f"{', '.join(known)}")


def resolve_root(info: RealDatasetInfo, root: str | os.PathLike | None) -> Path:
    """The dataset root from the option or ``info.root_env``; a clear error when missing."""
    where = (f"{info.title} cannot be redistributed: register and download it at {info.url}, unpack it so that "
             f"it reads {info.layout}, then pass {info.root_flag} DIR (dataset option root=DIR) or set "
             f"{info.root_env}=DIR")
    value = root if root not in (None, "") else os.environ.get(info.root_env)
    if not value:
        raise FileNotFoundError(f"{info.title} dataset root not set. {where}")
    path = Path(os.fspath(value)).expanduser()
    if not path.is_dir():
        src = "" if root not in (None, "") else f" (from {info.root_env})"
        raise FileNotFoundError(f"{info.title} dataset root {path}{src} does not exist or is not a folder. {where}")
    return path.resolve()


def resolve_landmarks(info: RealDatasetInfo, landmarks: Any) -> LandmarkEmbedding:
    """The landmark embedding from the option or ``$FC4DFS_FLAME_LANDMARKS``."""
    value = landmarks if landmarks not in (None, "") else os.environ.get(LANDMARKS_ENV)
    if not value:
        raise RealDataError(
            f"{info.title} needs FLAME's landmark embedding: pass --landmarks FILE (dataset option landmarks=FILE) "
            f"or set {LANDMARKS_ENV}=FILE. It comes with FLAME ({FLAME_URL}): flame_static_embedding.pkl (+ "
            "flame_dynamic_embedding.npy for the contour), or a .npz/.npy of (face index, barycentric) pairs")
    return load_landmark_embedding(value)


def units_scale(units: str) -> float:
    try:
        return UNITS[str(units).lower()]
    except KeyError:
        raise RealDataError(f"option units must be one of {', '.join(UNITS)}, got {units!r}") from None


def store_dir(kind: str, key: str, base: str | os.PathLike | None) -> Path:
    """Where a store lives: ``<cache>/realdata/<kind>/<key>`` (``base`` overrides the cache root)."""
    if base not in (None, ""):
        path = Path(os.fspath(base)).expanduser() / "realdata" / kind / key
        path.mkdir(parents=True, exist_ok=True)
        return path
    return cache_dir("realdata", kind, key)


# --------------------------------------------------------------------------- raw store
def verify_mode(verify: Any) -> str:
    """``auto`` | ``stat`` | ``folders`` | ``none`` (``True`` means ``stat``, ``False`` ``none``)."""
    if isinstance(verify, str) and verify.strip().lower() in VERIFY_MODES:
        return verify.strip().lower()
    try:
        return "stat" if as_bool(verify, "verify") else "none"
    except RealDataError:
        raise RealDataError(f"option verify must be one of {', '.join(VERIFY_MODES)} (or true/false), "
                            f"got {verify!r}") from None


def open_raw_store(info: RealDatasetInfo, root: Path, *, units: str = "m", skip_bad: bool = False,
                   verify: Any = "auto", progress: bool = True, cache: str | os.PathLike | None = None,
                   chunk_bytes: int | None = None) -> FrameStore:
    """Open (or build) the preprocessed store of the PLY files under ``root``.

    How an existing store is checked against the folder (``verify``):

    * ``stat``: list and ``stat`` every file; reuse the store only if names, sizes and mtimes all
      match (catches any change; ~20 µs per file);
    * ``folders``: compare only the folders' mtimes (catches added, removed or renamed files and
      folders, not a file rewritten in place; one ``stat`` per folder), falling back to ``stat``
      when a folder changed;
    * ``auto`` (default): ``stat`` up to 100,000 files (CoMA), ``folders`` above (Florence4D);
    * ``none``: reuse any valid store of this root without looking at the folder.

    The face size is checked against ``units`` before a build (on the first file) and on every open
    (on the store's first frame): see :func:`check_face_size`; a mismatch raises
    :class:`RealDataError` before any training.
    """
    store = _open_raw_store(info, root, units=units, skip_bad=skip_bad, verify=verify, progress=progress,
                            cache=cache, chunk_bytes=chunk_bytes)
    check_face_size(store.frames[0], units, f"{store.manifest['root']} (first mesh)")
    return store


def _open_raw_store(info: RealDatasetInfo, root: Path, *, units: str, skip_bad: bool, verify: Any,
                    progress: bool, cache: str | os.PathLike | None, chunk_bytes: int | None) -> FrameStore:
    scale = units_scale(units)
    mode = verify_mode(verify)
    key = stable_hash({"root": str(root), "units": units, "skip_bad": skip_bad, "store": STORE_FORMAT,
                       "reader": READER_VERSION})
    directory = store_dir(info.name, key, cache)
    existing = open_store(directory)
    if existing is not None:
        if mode == "auto":
            mode = "stat" if existing.manifest.get("num_files", 0) <= AUTO_STAT_LIMIT else "folders"
        if mode == "none" or (mode == "folders" and folders_unchanged(existing, root)):
            return existing
    inventory = scan_layout(root, info.layout, natural=False)
    build_id = stable_hash({"inventory": inventory.hash, "key": key})
    if existing is not None and existing.build_id == build_id:
        if mode == "folders":
            record_folders(existing, inventory)  # same files, touched folders: refresh the fast check
        return existing
    inventory = scan_layout(root, info.layout)  # natural order for the build
    _check_first_file(inventory, units)
    build_id = stable_hash({"inventory": inventory.hash, "key": key})
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": int(chunk_bytes)}
    return build_from_ply(directory, inventory, build_id, scale=scale, skip_bad=skip_bad, name=info.name,
                          progress=progress, **kwargs)


def face_extent(vertices: np.ndarray) -> float:
    """The size :func:`check_face_size` judges: the bounding-box diagonal of ``vertices [V, 3]`` (their units)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return float(np.linalg.norm(v.max(0) - v.min(0))) if len(v) else 0.0


def units_for_extent(extent: float) -> str | None:
    """The unit (m, cm, mm) under which a mesh of bounding-box diagonal ``extent`` (in its own units)
    has the size of a face: of those putting it inside :data:`FACE_EXTENT_MM`, the one nearest
    :data:`TYPICAL_FACE_MM` (log scale); ``None`` when none does."""
    lo, hi = FACE_EXTENT_MM
    fits = [u for u, s in UNITS.items() if lo <= extent * s <= hi]
    return min(fits, key=lambda u: abs(np.log(extent * UNITS[u] / TYPICAL_FACE_MM)), default=None)


def check_face_size(vertices_mm: np.ndarray, units: str, where: str) -> None:
    """Raise :class:`RealDataError` unless a mesh read in ``units`` has the size of a face.

    ``vertices_mm``: ``[V, 3]`` after conversion to millimetres. Its bounding-box diagonal must lie
    in :data:`FACE_EXTENT_MM`; the units are enforced, not detected: a folder in other units stops
    here, before any training, with the units under which the size would be a face's (a true
    extent of 100-500 mm is never plausible under two of m/cm/mm, which differ by 10x or more).
    """
    extent = face_extent(vertices_mm)
    lo, hi = FACE_EXTENT_MM
    if lo <= extent <= hi:
        return
    raw = extent / units_scale(units)
    guess = units_for_extent(raw)
    advice = (f"the files look to be in {guess}: set the dataset option units={guess} (--dataset-opt units={guess})"
              if guess else "set the dataset option units=m|cm|mm (--dataset-opt units=...) to the files' units")
    raise RealDataError(f"{where} spans {raw:.3g} {str(units).lower()} = {extent:.3g} mm, not the size of a face "
                        f"({lo:g}-{hi:g} mm): {advice}")


def _check_first_file(inventory: Any, units: str) -> None:
    """:func:`check_face_size` on the first file before a build (an unreadable one is left to the build)."""
    try:
        path = next(iter(inventory.paths()))[1]
        vertices = read_ply(path, faces=False).vertices
    except (StopIteration, PlyError, OSError):
        return
    check_face_size(np.asarray(vertices, np.float64) * units_scale(units), units, str(path))


def topology_of(store: FrameStore, embedding: LandmarkEmbedding, name: str) -> Topology:
    """The store's mesh topology with the landmark embedding (checked to fit)."""
    return embedding.topology(store.faces, store.num_vertices, name=name)


def dataset_from_store(name: str, store: FrameStore, topology: Topology, kind: str, default_fps: float,
                       fingerprint_extra: dict | None = None) -> Dataset:
    """Wrap a store's memory-mapped sequences as a :class:`Dataset` (no frame data is read)."""
    seqs = []
    skip = {"identity", "label", "start", "length", "fps", "frame_runs"}
    for i, rec in enumerate(store.sequences):
        meta = {k: v for k, v in rec.items() if k not in skip}
        runs = rec.get("frame_runs")
        if runs:
            meta["frames"] = [runs[0][0], runs[-1][1]]
            meta["gaps"] = runs[-1][1] - runs[0][0] + 1 - rec["length"]
        meta["source"] = f"{rec['identity']}/{rec['label']}"
        seqs.append(Sequence(rec["identity"], rec["label"], store.sequence_frames(i),
                             float(rec.get("fps", default_fps)), kind, topology, meta))
    labels = sorted({s.label for s in seqs}, key=natural_key)
    structure = [[s.identity, s.label, s.length, s.fps] for s in seqs]
    fp = stable_hash({"name": name, "content": store.manifest["content_hash"], "topology": topology.hash,
                      "kind": kind, "structure": stable_hash(structure), **(fingerprint_extra or {})})
    ds = Dataset(name, topology, seqs, labels, fingerprint=fp)
    ds.cache_path = str(store.directory)  # shown by ``fc4dfs-bench dataset info``
    return ds


def load_real(info: RealDatasetInfo, *, root: str | os.PathLike | None = None, landmarks: Any = None,
              skip_bad: Any = False, fps: float | None = None, units: str = "m", verify: Any = "auto",
              progress: Any = True, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a raw real dataset (every sequence as captured, kind ``info.kind``)."""
    path = resolve_root(info, root)
    embedding = resolve_landmarks(info, landmarks)
    store = open_raw_store(info, path, units=units, skip_bad=as_bool(skip_bad, "skip_bad"),
                           verify=verify,
                           progress=as_bool(progress, "progress"), cache=cache_dir)
    topo = topology_of(store, embedding, info.name)
    rate = float(fps if fps is not None else info.default_fps)
    if rate <= 0:
        raise RealDataError(f"option fps must be positive, got {fps!r}")
    return dataset_from_store(info.name, store, topo, info.kind, rate)
