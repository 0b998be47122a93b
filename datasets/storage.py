"""On-disk helpers shared by caches, checkpoints and run records: cache location, atomic writes, mapped pages."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

CACHE_ENV = "FC4DFS_CACHE"


def cache_dir(*parts: str) -> Path:
    """The user cache directory (``$FC4DFS_CACHE``, else ``$XDG_CACHE_HOME/fc4dfs``), created."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "fc4dfs")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)  # no /proc (macOS): read it the racy way
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old or the new file, never a torn one.

    The file gets the usual permissions (0666 less the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def stable_hash(obj: Any, n: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    import hashlib

    s = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(s.encode()).hexdigest()[:n]


def report_repair(message: str) -> None:
    """Say in one line on stderr that a damaged cache is being repaired (``fc4dfs: <message>``)."""
    import sys

    sys.stderr.write(f"fc4dfs: {' '.join(message.split())}\n")
    sys.stderr.flush()


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of a manifest's canonical JSON without its own ``manifest_sha256`` field (what that field holds)."""
    import hashlib

    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     default=_json_default).encode()).hexdigest()


def sealed(manifest: dict) -> dict:
    """``manifest`` with ``manifest_sha256`` set, so that any later edit or damage of the file is detected."""
    return {**manifest, "manifest_sha256": manifest_digest(manifest)}


def seal_intact(manifest: dict) -> bool:
    """Whether ``manifest`` (as read back) still has the digest :func:`sealed` gave it."""
    return manifest.get("manifest_sha256") == manifest_digest(manifest)


def clean_stale_builds(base: Path, prefixes: tuple[str, ...], lock_of: Callable[[str], str]) -> list[str]:
    """Remove build/trash folders ``<base>/<prefix><key>-...`` left by killed builds.

    A folder is removed only if the lock file ``lock_of(key)`` can be taken at once: a live builder
    holds it for the whole build, so its folder is never touched. Returns the names removed.
    """
    import shutil

    from filelock import FileLock, Timeout

    removed = []
    try:
        entries = sorted(p for p in base.iterdir() if p.name.startswith(prefixes))
    except FileNotFoundError:
        return removed
    for entry in entries:
        prefix = next(x for x in prefixes if entry.name.startswith(x))
        key = entry.name[len(prefix):].rsplit("-", 2)[0]
        try:
            with FileLock(lock_of(key), timeout=0):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        except Timeout:
            continue
    return removed


def release_mapped(*arrays: Any) -> None:
    """Give back this process's resident pages of the read-only memory maps under ``arrays``.

    A dataset's frames are a memory map (:mod:`fc4dfs.datasets.synthetic.cache`,
    :mod:`fc4dfs.datasets.realcache`); every page read stays counted in the process's resident memory
    until the map is closed, so a pass over all sequences would hold the whole file. After
    ``madvise(MADV_DONTNEED)`` on the pages each array spans, they stay in the OS page cache (reading
    them again costs no disk access) but no longer in this process. Arrays not backed by a map, and
    systems without ``madvise``, are left as they are.
    """
    import mmap

    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    for a in arrays:
        m = a
        while m is not None and getattr(m, "_mmap", None) is None:
            m = getattr(m, "base", None)
        mapped = None if m is None else m._mmap
        if mapped is None or not hasattr(mapped, "madvise") or getattr(a, "size", 0) == 0:
            continue
        import numpy as np

        origin = np.frombuffer(mapped, np.uint8).__array_interface__["data"][0]
        low, high = _byte_bounds(np.asarray(a))
        first = (low - origin) // mmap.PAGESIZE * mmap.PAGESIZE
        mapped.madvise(mmap.MADV_DONTNEED, first, min(high - origin, len(mapped)) - first)


def _byte_bounds(a: Any) -> tuple[int, int]:
    """First and one-past-last byte address of ``a`` (``numpy.byte_bounds``, moved in numpy 2)."""
    import numpy as np

    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # numpy < 2
        byte_bounds = np.byte_bounds
    return byte_bounds(a)
