"""User-facing errors: the CLI prints these as one line (no traceback) and exits with code 2.

The one boundary is :func:`fc4dfs.benchmark.cli.main`: it catches :func:`user_error_types`, the
operating-system errors of :func:`destination_error` (a path that cannot be written: not a
directory, read-only, immutable, disk full) and a lock that stays held (``filelock.Timeout``),
and prints :func:`one_line`. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: a wrong name, path, flag or file."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that means 'the user asked for something wrong'."""
    from fc4dfs.datasets.base import TopologyMismatchError
    from fc4dfs.plugins.checkpoint import CheckpointError
    from fc4dfs.plugins.errors import ComponentError
    from fc4dfs.plugins.errors import PluginError, UnknownComponentError

    return (UserError, ComponentError, UnknownComponentError, PluginError, TopologyMismatchError,
            CheckpointError, FileNotFoundError)


#: errno values that say "this path cannot be written" (the user's destination, not a bug)
DESTINATION_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                                errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EFBIG})


def destination_error(e: BaseException) -> bool:
    """Whether ``e`` is an OSError about a named path that cannot be written (see DESTINATION_ERRNOS)."""
    return isinstance(e, OSError) and e.errno in DESTINATION_ERRNOS and e.filename is not None


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line, quotes kept as written.

    ``KeyError`` quotes its argument in ``str()``; its argument is used as is. An OSError names its
    path: ``PATH: reason``. Line breaks (``\\n``, ``\\r``) become ``; ``.
    """
    import filelock

    if isinstance(e, KeyError) and len(e.args) == 1:
        msg = str(e.args[0])
    elif isinstance(e, filelock.Timeout):
        msg = (f"lock file {e.lock_file} is held by another process (gave up waiting); "
               "wait for that process or, if none is running, delete the lock file")
    elif isinstance(e, OSError) and e.filename is not None and not isinstance(e, FileNotFoundError):
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        msg = f"{where}: {e.strerror or e}"
    else:
        msg = str(e)
    parts = [p.strip() for p in msg.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "; ".join(p for p in parts if p) or type(e).__name__


def _probe_dir(folder: Path) -> None:
    """Create and delete a temporary file in the existing ``folder`` (raises OSError if it cannot)."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix=".fc4dfs-probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def writable_dir(path: Path, flag: str) -> Path:
    """Refuse an output folder that is a file or cannot be written, before any work.

    Nothing is created: an existing folder is probed with a temporary file, a missing one through
    its nearest existing parent. Raises UserError naming ``flag`` and the path.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{flag} {path}: {probe} is a file, not a folder")
    try:
        _probe_dir(probe)
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write in {probe}: {e.strerror or e}") from None
    return path


def writable_file(path: Path, flag: str) -> Path:
    """Refuse an output file that is a folder, read-only or immutable, before any work.

    The file (if present) is opened for appending, which changes neither its bytes nor its time
    stamps, and its folder is probed as in :func:`writable_dir`. Raises UserError naming ``flag``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file")
    writable_dir(path.parent, flag)
    if path.exists():
        try:
            with open(path, "a"):
                pass
        except OSError as e:
            raise UserError(f"{flag} {path}: cannot write: {e.strerror or e}") from None
    return path
