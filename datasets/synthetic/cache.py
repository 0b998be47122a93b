"""On-disk cache of generated datasets: raw float32 arrays read back memory-mapped + a manifest.

Layout of ``<cache>/synthetic/<key>/``::

    manifest.json   config, code version, topology hash, one entry per sequence, file sizes and
                    SHA-256 of every ``CHUNK_BYTES`` chunk of each array file
    frames.f32      all sequences' frames, concatenated: [total frames, V, 3] float32
    neutrals.f32    one neutral mesh per identity: [identities, V, 3] float32

A build streams sequences to a private temporary directory, one at a time (memory stays flat
however large the dataset), hashing as it writes; the directory is renamed into place only
when complete, so a reader never sees a half-written cache. A cache whose manifest is missing,
unreadable or fails its own SHA-256 (``manifest_sha256``), whose sequences do not tile the frames,
whose files have the wrong size, or whose chunks fail their hash is rebuilt, saying so in one line
on stderr; folders left by a killed build (``.build-*``, ``.trash-*``) are removed by the next build
once their key's lock is free.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from fc4dfs.datasets.storage import (atomic_write_json, cache_dir, clean_stale_builds, report_repair, seal_intact,
                                     sealed)

CHUNK_BYTES = 32 << 20
MANIFEST = "manifest.json"
FRAMES = "frames.f32"
NEUTRALS = "neutrals.f32"
#: 2: the manifest carries its own SHA-256 (``manifest_sha256``)
FORMAT = 2
#: ``verify="auto"`` hashes every chunk up to this many bytes, a sample of chunks beyond
FULL_VERIFY_BYTES = 1 << 30
SAMPLED_CHUNKS = 16


class CacheCorruptError(RuntimeError):
    """A cache directory failed verification (the message says which file and why)."""


class ChunkedWriter:
    """Append bytes to a file while hashing fixed-size chunks (no memory map, no re-read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "wb")
        self._h = hashlib.sha256()
        self._in_chunk = 0
        self.bytes = 0
        self.hashes: list[str] = []

    def write(self, array: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(array, dtype=np.float32)).cast("B")
        self._f.write(data)
        pos = 0
        while pos < len(data):
            take = min(CHUNK_BYTES - self._in_chunk, len(data) - pos)
            self._h.update(data[pos:pos + take])
            self._in_chunk += take
            pos += take
            if self._in_chunk == CHUNK_BYTES:
                self.hashes.append(self._h.hexdigest())
                self._h, self._in_chunk = hashlib.sha256(), 0
        self.bytes += len(data)

    def close(self) -> dict:
        if self._in_chunk:
            self.hashes.append(self._h.hexdigest())
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        return {"bytes": self.bytes, "chunk_bytes": CHUNK_BYTES, "sha256": self.hashes}


def root() -> Path:
    """``<cache>/synthetic`` (created)."""
    return cache_dir("synthetic")


def entry_dir(key: str) -> Path:
    return root() / key


def lock_path(key: str) -> str:
    """The lock a builder of ``key`` holds for the whole build (``<cache>/synthetic/<key>.lock``)."""
    return str(root() / f"{key}.lock")


def build(key: str, write: Callable[[Path], dict]) -> Path:
    """Build the cache entry ``key`` with ``write(tmpdir) -> manifest`` and move it into place.

    Call with :func:`lock_path` ``(key)`` held. Build and trash folders left by killed builds are
    removed first: this key's (its lock is ours) and any other key's whose lock is free.
    """
    base = root()
    for stale in base.glob(f".build-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in base.glob(f".trash-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    removed = clean_stale_builds(base, (".build-", ".trash-"), lock_path)
    if removed:
        report_repair(f"removed {len(removed)} folder(s) left by interrupted synthetic cache builds in {base}")
    tmp = base / f".build-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        manifest = write(tmp)
        atomic_write_json(tmp / MANIFEST, sealed(manifest))
        final = base / key
        if final.exists():
            trash = base / f".trash-{key}-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path: Path) -> dict:
    """The manifest of a cache entry; :class:`CacheCorruptError` if absent or unreadable."""
    mf = path / MANIFEST
    try:
        with open(mf, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise CacheCorruptError(f"{mf} is missing") from None
    except (OSError, ValueError) as e:
        raise CacheCorruptError(f"{mf} is unreadable: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "files" not in manifest:
        raise CacheCorruptError(f"{mf} has an unknown format")
    if not seal_intact(manifest):
        raise CacheCorruptError(f"{mf} fails its SHA-256 check (edited or damaged)")
    _check_layout(mf, manifest)
    return manifest


def _check_layout(mf: Path, manifest: dict) -> None:
    """The sequences tile the frames file exactly, in order (a sealed manifest of a bug would not)."""
    try:
        start = 0
        for e in manifest["sequences"]:
            if int(e["start"]) != start or int(e["length"]) < 1:
                raise CacheCorruptError(f"{mf}: sequence {e.get('identity')}/{e.get('label')} starts at frame "
                                        f"{e['start']}, the previous one ends at {start}")
            start += int(e["length"])
        if start != int(manifest["total_frames"]):
            raise CacheCorruptError(f"{mf}: sequences hold {start} frames, the manifest says "
                                    f"{manifest['total_frames']}")
    except (KeyError, TypeError, ValueError) as e:
        raise CacheCorruptError(f"{mf} lacks a field or has a malformed one ({e})") from None


def verify(path: Path, manifest: dict, mode: str = "auto") -> None:
    """Check each array file's size and chunk hashes (``mode``: full, auto or size)."""
    if mode not in ("full", "auto", "size"):
        raise ValueError(f"verify must be 'full', 'auto' or 'size', got {mode!r}")
    total = sum(int(info["bytes"]) for info in manifest["files"].values())
    for name, info in manifest["files"].items():
        fp = path / name
        try:
            size = fp.stat().st_size
        except FileNotFoundError:
            raise CacheCorruptError(f"{fp} is missing") from None
        if size != int(info["bytes"]):
            raise CacheCorruptError(f"{fp} has {size} bytes, the manifest says {info['bytes']} (truncated?)")
        if mode == "size":
            continue
        hashes = info["sha256"]
        chunks: Iterable[int] = range(len(hashes))
        if mode == "auto" and total > FULL_VERIFY_BYTES and len(hashes) > SAMPLED_CHUNKS:
            chunks = sorted(set(np.linspace(0, len(hashes) - 1, SAMPLED_CHUNKS).round().astype(int).tolist()))
        for k, digest in _chunk_hashes(fp, int(info["chunk_bytes"]), chunks):
            if digest != hashes[k]:
                raise CacheCorruptError(f"{fp} chunk {k} fails its SHA-256 check (corrupted)")


def _chunk_hashes(fp: Path, chunk: int, which: Iterable[int]) -> Iterator[tuple[int, str]]:
    buf = bytearray(min(chunk, 8 << 20))
    view = memoryview(buf)
    with open(fp, "rb", buffering=0) as f:
        for k in which:
            f.seek(k * chunk)
            h = hashlib.sha256()
            left = chunk
            while left:
                n = f.readinto(view[:min(left, len(buf))])
                if not n:
                    break
                h.update(view[:n])
                left -= n
            yield k, h.hexdigest()


def open_array(path: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 memory map of ``name`` with ``shape``."""
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=np.float32)
    return np.memmap(path / name, dtype=np.float32, mode="r", shape=shape)
