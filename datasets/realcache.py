"""Preprocessed, memory-mapped frame stores for datasets read from folders of PLY meshes.

A *store* is a directory holding

* ``frames.f32`` — every kept mesh, float32 millimetres, ``[N, V, 3]`` row-major (opened as a
  read-only ``numpy.memmap``, so a sequence's frames are a zero-copy slice);
* ``faces.npy`` — the topology's faces;
* ``manifest.json`` — the sequences (identity, label, first row, length, frame numbers, fps), the
  files that were skipped and why, the topology hash, the build id;
* ``inventory.jsonl`` — the source files with sizes and mtimes (what the build id hashes);
* ``crc32.u32`` — a CRC-32 per source file of its stored vertices, hashed into the manifest's
  ``content_hash`` (what the dataset fingerprint is made of, so touching files does not change it);
* ``VALID`` — written last, atomically, holding the build id. A store without it is never opened.

Each open verifies a store marked valid (:func:`open_store`): the manifest's own SHA-256, its
sequences against the frames file, the files' sizes and a sample of frame CRC-32s; a damaged
store is rebuilt, said in one line on stderr. A build first removes the temporary files a killed
build left (under the store's lock, so never a live builder's).

Building streams the files in chunks (a fixed-size buffer written with ``pwrite``), so peak memory
does not grow with the mesh data (only the file list is held, ~250 bytes a file); after each chunk
``progress.json`` records how far it got, and a re-run after an interruption resumes from there. A failed build leaves no ``VALID`` marker.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from fc4dfs.datasets.ply import PlyError, PlyFrameReader, PlyTopologyError
from fc4dfs.datasets.storage import (atomic_write_json, atomic_write_text, report_repair, seal_intact,
                                     sealed)
from fc4dfs.plugins.errors import ComponentError

#: 2: manifests carry their own SHA-256 (``manifest_sha256``)
STORE_FORMAT = "fc4dfs-realcache/2"
FRAMES, FACES, MANIFEST, INVENTORY, VALID, PROGRESS, LOCK, DIGESTS = (
    "frames.f32", "faces.npy", "manifest.json", "inventory.jsonl", "VALID", "progress.json", ".lock", "crc32.u32")
#: bytes of mesh data buffered before each write (bounds the builder's memory)
DEFAULT_CHUNK_BYTES = 32 << 20
#: frames whose CRC-32 is checked each time a store is opened (evenly spaced; all when fewer)
VERIFY_FRAMES = 64
#: files read, besides a failing first one, before advising --skip-bad (see ``_reference_hint``)
REFERENCE_PROBE = 8


class RealDataError(ComponentError):
    """Bad input in a real dataset's folder (the message names the file and what to do)."""


# --------------------------------------------------------------------------- inventory
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key ordering ``a2`` before ``a10`` (digit runs compare as numbers), case-insensitively."""
    parts = _DIGITS.split(name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)) + (name,)


def frame_number(name: str, default: int) -> int:
    """The last run of digits in a file's stem (``bareteeth.000012.ply`` -> 12), else ``default``."""
    digits = _DIGITS.findall(Path(name).stem)
    return int(digits[-1]) if digits else default


def to_runs(numbers: list[int]) -> list[list[int]]:
    """Increasing frame numbers as ``[first, last]`` runs of consecutive numbers (compact in a manifest)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


def from_runs(runs: list[list[int]]) -> list[int]:
    return [n for a, b in runs for n in range(a, b + 1)]


@dataclass
class SequenceEntry:
    """One ``<identity>/<label>/`` folder and its PLY files in natural order."""

    identity: str
    label: str
    files: list[str]
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mtimes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def rel(self) -> str:
        return f"{self.identity}/{self.label}"


@dataclass
class Inventory:
    """What lies under a dataset root laid out as ``<root>/<identity>/<label>/*.ply``."""

    root: Path
    sequences: list[SequenceEntry]
    empty: list[str]  # identity/label folders without PLY files
    dirs: list[tuple[str, int]] = field(default_factory=list)  # (folder relative to root, mtime_ns)

    @property
    def num_files(self) -> int:
        return sum(len(s.files) for s in self.sequences)

    def paths(self) -> Iterator[tuple[int, Path]]:
        """(sequence index, path) for every file, in store order."""
        for i, s in enumerate(self.sequences):
            base = self.root / s.identity / s.label
            for f in s.files:
                yield i, base / f

    def file_at(self, index: int) -> str:
        for s in self.sequences:
            if index < len(s.files):
                return f"{s.rel}/{s.files[index]}"
            index -= len(s.files)
        raise IndexError(index)

    @property
    def hash(self) -> str:
        """Content hash of the listing: relative paths, sizes and mtimes (changes when any file does)."""
        h = hashlib.sha256()
        for s in sorted(self.sequences, key=lambda s: s.rel):  # plain order: a verifying scan need not sort
            h.update(f"{s.rel}\n".encode())
            rows = sorted(zip(s.files, s.sizes.tolist(), s.mtimes.tolist()))
            h.update("".join(f"{f}\0{sz}\0{mt}\n" for f, sz, mt in rows).encode())
        for e in sorted(self.empty):
            h.update(f"empty:{e}\n".encode())
        return h.hexdigest()[:24]

    def write_jsonl(self, path: Path) -> None:
        """Write the listing as JSON lines (one per sequence), atomically and without building it in memory."""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"root": str(self.root), "empty": self.empty}) + "\n")
                for s in self.sequences:
                    f.write(json.dumps({"identity": s.identity, "label": s.label, "files": s.files,
                                        "sizes": s.sizes.tolist(), "mtimes": s.mtimes.tolist()},
                                       separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _subdirs(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        dirs = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    return sorted(dirs, key=lambda e: natural_key(e.name))


def scan_layout(root: Path, layout_hint: str, natural: bool = True) -> Inventory:
    """List ``<root>/<identity>/<label>/*.ply`` (natural order at every level, never ``listdir`` order).

    ``natural=False`` leaves files in plain name order: enough to compare a listing's hash, cheaper.
    """
    seqs: list[SequenceEntry] = []
    empty: list[str] = []
    dirs: list[tuple[str, int]] = [("", root.stat().st_mtime_ns)]
    for ident in _subdirs(root):
        dirs.append((ident.name, ident.stat().st_mtime_ns))
        for lab in _subdirs(Path(ident.path)):
            dirs.append((f"{ident.name}/{lab.name}", lab.stat().st_mtime_ns))
            with os.scandir(lab.path) as it:
                plys = [e for e in it if e.name.lower().endswith(".ply") and not e.name.startswith(".")
                        and e.is_file()]
            if not plys:
                empty.append(f"{ident.name}/{lab.name}")
                continue
            if natural:
                plys.sort(key=lambda e: natural_key(e.name))
            stats = [e.stat() for e in plys]
            seqs.append(SequenceEntry(ident.name, lab.name, [e.name for e in plys],
                                      np.fromiter((s.st_size for s in stats), np.int64, len(stats)),
                                      np.fromiter((s.st_mtime_ns for s in stats), np.int64, len(stats))))
    if not seqs:
        deeper = next((str(p.parent.parent.parent) for p in root.glob("*/*/*/*.ply")), None)
        hint = f"; PLY files lie one level deeper — did you mean {deeper}?" if deeper else ""
        raise RealDataError(f"no PLY files found under {root} in the expected layout {layout_hint}{hint}")
    return Inventory(root, seqs, empty, dirs)


def folders_unchanged(store: "FrameStore", root: Path) -> bool:
    """True when every folder the store was built from still has its recorded mtime.

    Adding, removing or renaming a file or folder changes its parent folder's mtime, so this
    catches them with one ``stat`` per folder; rewriting a file in place is *not* caught.
    """
    recorded = store.manifest.get("folders")
    if not recorded or store.manifest.get("root") != str(root):
        return False
    try:
        return all(os.stat(root / rel if rel else root).st_mtime_ns == mt for rel, mt in recorded)
    except OSError:
        return False


def record_folders(store: "FrameStore", inventory: Inventory) -> None:
    """Refresh the folder mtimes in a valid store's manifest (after a full scan found the same files)."""
    store.manifest["folders"] = [list(d) for d in inventory.dirs]
    store.manifest = sealed(store.manifest)
    atomic_write_json(store.directory / MANIFEST, store.manifest)


# --------------------------------------------------------------------------- opened store
@dataclass
class FrameStore:
    """An opened, valid store: ``frames`` is a read-only memmap ``[N, V, 3]`` float32 (mm)."""

    directory: Path
    manifest: dict
    frames: np.ndarray
    faces: np.ndarray

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    @property
    def sequences(self) -> list[dict]:
        return self.manifest["sequences"]

    @property
    def num_vertices(self) -> int:
        return int(self.manifest["num_vertices"])

    def sequence_frames(self, index: int) -> np.ndarray:
        """Frames ``[T, V, 3]`` of one sequence: a read-only view into the mapped file (no copy)."""
        s = self.sequences[index]
        view = self.__dict__.get("_view")
        if view is None:  # plain-ndarray view of the memmap: slicing it is much cheaper than slicing a memmap
            view = self.__dict__["_view"] = self.frames.view(np.ndarray)
        return view[s["start"]:s["start"] + s["length"]]


def read_valid_marker(directory: Path) -> str | None:
    try:
        return (directory / VALID).read_text().strip() or None
    except FileNotFoundError:
        return None


def open_store(directory: str | os.PathLike, build_id: str | None = None, report: bool = True) -> FrameStore | None:
    """Open the store in ``directory`` if it is valid (and, when given, built from ``build_id``).

    A store marked valid is verified: the manifest against its own SHA-256 and its sequences
    against the frames file, every file's presence and size, and the CRC-32 of up to
    :data:`VERIFY_FRAMES` frames (all of them in a small store, evenly spaced ones in a large one)
    against ``crc32.u32``. A damaged store gives None (so it is rebuilt), said in one line on
    stderr when ``report``.
    """
    directory = Path(directory)
    marker = read_valid_marker(directory)
    if marker is None or (build_id is not None and marker != build_id):
        return None
    try:
        store = _verified(directory, marker)
    except _Damaged as e:
        if report:
            report_repair(f"real-data cache {directory} is damaged ({e}); rebuilding it")
        return None
    return store


class _Damaged(Exception):
    """Why a store marked valid failed verification."""


def _verified(directory: Path, marker: str) -> FrameStore:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        faces = np.load(directory / FACES, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _Damaged(f"{MANIFEST} or {FACES} unreadable: {type(e).__name__}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT or manifest.get("build_id") != marker:
        raise _Damaged(f"{MANIFEST} has another format or build id")
    if not seal_intact(manifest):
        raise _Damaged(f"{MANIFEST} fails its SHA-256 check")
    try:
        n, v = int(manifest["frame_count"]), int(manifest["num_vertices"])
        ends = [(int(r["start"]), int(r["length"])) for r in manifest["sequences"]]
    except (KeyError, TypeError, ValueError):
        raise _Damaged(f"{MANIFEST} lacks a field") from None
    if any(length < 1 or start < 0 or start + length > n for start, length in ends):
        raise _Damaged(f"{MANIFEST} has a sequence outside the {n} stored frames")
    path = directory / FRAMES
    if n == 0 or not path.is_file() or path.stat().st_size != n * v * 12:
        raise _Damaged(f"{FRAMES} is missing or not {n} frames of {v} vertices")
    frames = np.memmap(path, dtype=np.float32, mode="r", shape=(n, v, 3))
    if "bad_files" in manifest:  # a store read from PLY files: per-file CRC-32 of the stored vertices
        _check_crcs(directory, manifest, frames)
    return FrameStore(directory, manifest, frames, faces)


def _check_crcs(directory: Path, manifest: dict, frames: np.ndarray) -> None:
    total = int(manifest.get("num_files", 0))
    try:
        digests = np.fromfile(directory / DIGESTS, dtype="<u4")
    except OSError:
        raise _Damaged(f"{DIGESTS} is missing") from None
    if len(digests) != total:
        raise _Damaged(f"{DIGESTS} holds {len(digests)} digests for {total} files")
    kept = np.setdiff1d(np.arange(total), [int(b["index"]) for b in manifest["bad_files"]])
    if len(kept) != len(frames):
        raise _Damaged(f"{MANIFEST} lists {len(kept)} kept files for {len(frames)} frames")
    rows = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), VERIFY_FRAMES)).round().astype(int))
    for row in rows.tolist():
        if zlib.crc32(np.ascontiguousarray(frames[row])) != int(digests[kept[row]]):
            raise _Damaged(f"frame {row} of {FRAMES} fails its CRC-32 check")


def invalidate(directory: Path) -> None:
    """Remove the VALID marker first, so that a half-rewritten store can never look valid."""
    try:
        os.unlink(directory / VALID)
    except FileNotFoundError:
        pass


def _finalize(directory: Path, fd: int, count: int, num_vertices: int, manifest: dict,
              inventory: Inventory | None) -> FrameStore:
    os.ftruncate(fd, count * num_vertices * 12)
    os.fsync(fd)
    if inventory is not None:
        inventory.write_jsonl(directory / INVENTORY)
    manifest = {**manifest, "format": STORE_FORMAT, "frame_count": count, "num_vertices": num_vertices,
                "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_json(directory / MANIFEST, sealed(manifest))
    try:
        os.unlink(directory / PROGRESS)
    except FileNotFoundError:
        pass
    atomic_write_text(directory / VALID, manifest["build_id"] + "\n")
    store = open_store(directory, manifest["build_id"], report=False)
    if store is None:
        raise RealDataError(f"cache in {directory} did not verify after writing it (disk full or changed "
                            "under us?); delete the folder and retry")
    return store


def _unlink(directory: Path, *names: str) -> None:
    for name in names:
        try:
            os.unlink(directory / name)
        except FileNotFoundError:
            pass


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove the ``.<name>.*.tmp`` files of atomic writes cut short by a killed build (call with the
    store's lock held: no live builder writes in ``directory`` then)."""
    stale = [p for p in directory.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        report_repair(f"removed {len(stale)} temporary file(s) left by an interrupted cache build in {directory}")


def _lock(directory: Path):
    from filelock import FileLock

    return FileLock(str(directory / LOCK))


def _open_frames(path: Path, capacity_bytes: int, fresh: bool) -> int:
    if fresh:
        with open(path, "wb") as f:
            f.truncate(capacity_bytes)  # sparse: no disk space is used until written
    return os.open(path, os.O_RDWR)


def _pwrite_all(fd: int, buf: memoryview, offset: int) -> None:
    while len(buf):
        n = os.pwrite(fd, buf, offset)
        buf, offset = buf[n:], offset + n


# --------------------------------------------------------------------------- PLY -> store
def build_from_ply(directory: str | os.PathLike, inventory: Inventory, build_id: str, *, scale: float,
                   skip_bad: bool, name: str, progress: bool = True,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> FrameStore:
    """Parse every PLY of ``inventory`` into a store in ``directory`` (resuming an interrupted build).

    Vertices are multiplied by ``scale`` (1000 for metres -> mm). A file that is not PLY, is
    truncated or holds NaN/Inf vertices raises :class:`RealDataError` naming it, unless
    ``skip_bad``: then it is skipped and listed in the manifest. A file with another vertex count
    or face list than the reference (the first readable file) always raises.
    """
    if inventory.empty and not skip_bad:
        raise RealDataError(f"{inventory.root / inventory.empty[0]}: expression folder holds no PLY file"
                            f"{_hint(skip_bad)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _lock(directory):
        done = open_store(directory, build_id, report=False)
        if done is not None:  # another process finished it while we waited for the lock
            return done
        invalidate(directory)
        _remove_stale_temporaries(directory)
        return _build_locked(directory, inventory, build_id, scale=scale, skip_bad=skip_bad, name=name,
                             progress=progress,
                             chunk_bytes=chunk_bytes)


def _hint(skip_bad: bool) -> str:
    return "" if skip_bad else " (pass --skip-bad / skip_bad=True to skip such files and list them in the manifest)"


def _reference(inventory: Inventory, skip_bad: bool, bad: list[dict]) -> tuple[int, PlyFrameReader]:
    for index, (_, path) in enumerate(inventory.paths()):
        try:
            return index, PlyFrameReader.from_file(path)
        except (PlyError, OSError) as e:
            if not skip_bad:
                raise RealDataError(f"{e}{_reference_hint(inventory, index)}") from None
            bad.append({"index": index, "file": inventory.file_at(index), "reason": str(e)})
    raise RealDataError(f"no readable PLY file under {inventory.root}")


def _reference_hint(inventory: Inventory, failed: int) -> str:
    """Advice after the first file failed: ``--skip-bad`` only when other files are readable (a probe of up
    to :data:`REFERENCE_PROBE` files spread over the dataset), else that it would skip every file."""
    total = inventory.num_files
    picks = sorted({int(i) for i in np.linspace(0, total - 1, min(total, REFERENCE_PROBE + 1))} - {failed})
    for index in picks:
        try:
            PlyFrameReader.from_file(inventory.root / inventory.file_at(index))
            return _hint(False)
        except (PlyError, OSError):
            continue
    if not picks:
        return ""
    return (f" (the {len(picks)} other files checked fail too, so --skip-bad would skip them all: convert the "
            "files to binary or ASCII PLY meshes)")


def _build_locked(directory: Path, inventory: Inventory, build_id: str, *, scale: float, skip_bad: bool,
                  name: str, progress: bool, chunk_bytes: int) -> FrameStore:
    total = inventory.num_files
    state = _load_progress(directory, build_id)
    bad: list[dict] = []
    if state is None:
        _unlink(directory, FRAMES, MANIFEST, INVENTORY, PROGRESS, FACES, DIGESTS)
        ref_index, reader = _reference(inventory, skip_bad, bad)
        np.save(directory / FACES, reader.faces)
        state = {"build_id": build_id, "next_file": ref_index, "cursor": 0, "bad": bad,
                 "reference": inventory.file_at(ref_index), "num_vertices": reader.num_vertices}
        fresh = True
    else:
        faces = np.load(directory / FACES, allow_pickle=False)
        reader = PlyFrameReader(faces, state["num_vertices"], str(inventory.root / state["reference"]))
        fresh = False
    V = reader.num_vertices
    frame_bytes = V * 12
    fd = _open_frames(directory / FRAMES, total * frame_bytes, fresh)
    dfd = _open_frames(directory / DIGESTS, total * 4, fresh)
    try:
        files = itertools.islice(inventory.paths(), state["next_file"], None)
        chunk = max(1, chunk_bytes // frame_bytes)
        buf = np.empty((chunk, V, 3), np.float32)
        bad_set = {b["index"] for b in state["bad"]}
        i, cursor = state["next_file"], state["cursor"]
        bar = _bar(progress, total, i, f"preprocessing {name}")
        try:
            while i < total:
                n, first, digests = 0, i, bytearray()
                while i < total and n < chunk:
                    reason = _read_one(reader, next(files)[1], buf[n], scale)
                    if reason is not None:
                        if not skip_bad:
                            raise RealDataError(f"{reason}{_hint(skip_bad)}")
                        state["bad"].append({"index": i, "file": inventory.file_at(i), "reason": reason})
                        bad_set.add(i)
                        digests += bytes(4)
                    else:
                        digests += zlib.crc32(buf[n]).to_bytes(4, "little")
                        n += 1
                    i += 1
                _pwrite_all(fd, memoryview(buf[:n]).cast("B"), cursor * frame_bytes)
                _pwrite_all(dfd, memoryview(digests), first * 4)
                cursor += n
                os.fsync(fd)
                os.fsync(dfd)
                state.update(next_file=i, cursor=cursor)
                atomic_write_json(directory / PROGRESS, state)
                if bar is not None:
                    bar.update(i - bar.n)
        finally:
            if bar is not None:
                bar.close()
        manifest = _ply_manifest(inventory, state, bad_set, build_id, name, scale, skip_bad, reader)
        manifest["content_hash"] = _content_hash(directory / DIGESTS, reader.faces, scale)
        return _finalize(directory, fd, cursor, V, manifest, inventory)
    finally:
        os.close(fd)
        os.close(dfd)


def _content_hash(digests: Path, faces: np.ndarray, scale: float) -> str:
    """Hash of every kept mesh (per-file CRC-32 of the float32 mm vertices, in order) and the faces."""
    h = hashlib.sha256(np.ascontiguousarray(faces, np.int64).tobytes())
    h.update(repr(float(scale)).encode())
    with open(digests, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:24]


def _read_one(reader: PlyFrameReader, path: Path, out: np.ndarray, scale: float) -> str | None:
    """Read ``path`` into ``out`` (scaled); return why it is bad, or None. Topology errors raise."""
    try:
        reader.read(path, out=out, scale=scale)
    except PlyTopologyError as e:
        raise RealDataError(str(e)) from None
    except PlyError as e:
        return str(e)
    except OSError as e:
        return f"{path}: cannot read ({e.strerror or e})"
    if not np.isfinite(out).all():
        rows = np.flatnonzero(~np.isfinite(out).all(1))
        return f"{path}: {len(rows)} vertices are NaN or Inf (first: vertex {int(rows[0])})"
    return None


def _bar(progress: bool, total: int, initial: int, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="mesh", dynamic_ncols=True)


def _load_progress(directory: Path, build_id: str) -> dict | None:
    try:
        state = json.loads((directory / PROGRESS).read_text())
    except (OSError, ValueError):
        return None
    if state.get("build_id") != build_id or not all((directory / p).is_file() for p in (FACES, FRAMES, DIGESTS)):
        return None
    return state


def _ply_manifest(inventory: Inventory, state: dict, bad_set: set[int], build_id: str, name: str, scale: float,
                  skip_bad: bool, reader: PlyFrameReader) -> dict:
    sequences, dropped = [], []
    row, index = 0, 0
    for s in inventory.sequences:
        numbers = []
        start = row
        for k, f in enumerate(s.files):
            if index not in bad_set:
                numbers.append(frame_number(f, k))
                row += 1
            index += 1
        if len(set(numbers)) != len(numbers) or numbers != sorted(numbers):
            numbers = list(range(len(numbers)))  # names carry no usable frame numbers: use the order
        if len(numbers) < 2:
            msg = f"{inventory.root / s.rel}: {len(numbers)} readable frame(s); a sequence needs at least 2"
            if not skip_bad:
                raise RealDataError(msg + _hint(skip_bad))
            dropped.append({"sequence": s.rel, "reason": msg})
            continue
        sequences.append({"identity": s.identity, "label": s.label, "start": start, "length": len(numbers),
                          "frame_runs": to_runs(numbers), "first_file": s.files[0]})
    if not sequences:
        raise RealDataError(f"no usable sequence under {inventory.root}")
    return {"build_id": build_id, "name": name, "root": str(inventory.root), "scale": scale, "skip_bad": skip_bad,
            "num_faces": len(reader.faces), "faces_hash": hashlib.sha256(reader.faces.tobytes()).hexdigest()[:16],
            "reference_file": state["reference"], "inventory_hash": inventory.hash, "num_files": inventory.num_files,
            "sequences": sequences, "bad_files": state["bad"], "dropped_sequences": dropped,
            "empty_folders": inventory.empty, "folders": [list(d) for d in inventory.dirs]}


# --------------------------------------------------------------------------- derived stores
def build_derived(directory: str | os.PathLike, build_id: str, faces: np.ndarray, num_vertices: int,
                  capacity_frames: int, produce: Callable[[], Iterator[tuple[dict, np.ndarray]]],
                  manifest_extra: dict, progress: bool = True, total: int | None = None,
                  name: str = "") -> FrameStore:
    """Write the sequences yielded by ``produce()`` (``(record, frames [T, V, 3])``) into a store.

    Used for stores computed from another store (e.g. Aligned CoMA cuts). ``capacity_frames`` is an
    upper bound of the frames written. Small and quick to redo, so an interrupted build restarts.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _lock(directory):
        done = open_store(directory, build_id, report=False)
        if done is not None:
            return done
        invalidate(directory)
        _remove_stale_temporaries(directory)
        _unlink(directory, FRAMES, MANIFEST, FACES)  # new inodes: readers mapping the old frames keep them
        np.save(directory / FACES, np.asarray(faces, np.int64))
        fd = _open_frames(directory / FRAMES, max(1, capacity_frames) * num_vertices * 12, fresh=True)
        try:
            cursor = 0
            records = []
            content = hashlib.sha256(np.ascontiguousarray(faces, np.int64).tobytes())
            bar = _bar(progress, total or 0, 0, f"preparing {name}") if total else None
            for record, frames in produce():
                frames = np.ascontiguousarray(frames, dtype=np.float32)
                if cursor + len(frames) > capacity_frames:
                    raise RuntimeError("derived store capacity exceeded")
                content.update(frames)
                _pwrite_all(fd, memoryview(frames).cast("B"), cursor * num_vertices * 12)
                records.append({**record, "start": cursor, "length": len(frames)})
                cursor += len(frames)
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
            if not records:
                raise RealDataError(f"no sequence could be derived for {name}")
            manifest = {**manifest_extra, "build_id": build_id, "name": name, "sequences": records,
                        "content_hash": content.hexdigest()[:24]}
            return _finalize(directory, fd, cursor, num_vertices, manifest, None)
        finally:
            os.close(fd)

