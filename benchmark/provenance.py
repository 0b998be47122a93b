"""Provenance of a run: code version, package versions, device."""
from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the source tree this package runs from (None outside git)."""
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                                    capture_output=True, text=True, timeout=5, check=True).stdout.strip())
        return {"git_commit": commit, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.machine()}, {_cpu_count()} cores)"


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def collect(device: str, plugin_distributions: list[tuple[str, str]]) -> dict[str, Any]:
    """Everything needed to say which code on which machine produced a result."""
    import numpy
    import torch

    return {
        "package_version": _version("fc4dfs-bench"),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "python_version": platform.python_version(),
        "plugins": {d: v for d, v in plugin_distributions},
        "device": device,
        "device_name": device_name(device),
        **git_state(),
    }
