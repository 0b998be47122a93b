"""Checkpoint files: safetensors tensors + a JSON header; written atomically, loaded without pickle.

The header carries a SHA-256 of the tensors (names, dtypes, shapes and bytes) that :func:`read_checkpoint`
verifies, so a file whose tensor bytes were overwritten is refused rather than loaded. Files written
before the hash existed have none and are read unverified.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from fc4dfs.datasets.storage import atomic_write_bytes, _json_default

HEADER_KEY = "fc4dfs"
#: safetensors metadata key of the tensors' SHA-256 (see :func:`tensors_sha256`)
HASH_KEY = "fc4dfs.tensors_sha256"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or not one of ours."""


def prefixed(prefix: str, tensors: Mapping[str, "torch.Tensor | np.ndarray"]) -> dict[str, torch.Tensor]:
    """``{"prefix.key": tensor}``: one part of a checkpoint (a ``state_dict`` or numpy arrays), detached, on the
    CPU, unshared."""
    return {f"{prefix}.{k}": _tensor(v).detach().cpu().contiguous().clone() for k, v in tensors.items()}


def _tensor(v: "torch.Tensor | np.ndarray") -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v


def unprefixed(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of a checkpoint written by :func:`prefixed` under ``prefix``, with the prefix removed."""
    head = f"{prefix}."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> Path:
    """Write ``tensors`` and the JSON ``header`` (plus the tensors' SHA-256) to ``path`` atomically."""
    path = Path(path)
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {HEADER_KEY: json.dumps(header, sort_keys=True, default=_json_default), HASH_KEY: tensors_sha256(clean)}
    atomic_write_bytes(path, st_save(clean, metadata=meta))
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, header)`` of a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, not ours, or its
    tensors do not match the SHA-256 in its header.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        n = int.from_bytes(data[:8], "little")
        header_json = json.loads(data[8:8 + n])
        meta = header_json.get("__metadata__", {})
        header = json.loads(meta[HEADER_KEY])
    except (SafetensorError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a readable fc4dfs checkpoint ({e})") from None
    expected = meta.get(HASH_KEY)
    if expected is not None and tensors_sha256(tensors) != expected:
        raise CheckpointError(f"{path} is damaged: its tensors do not match the SHA-256 in its header")
    return tensors, header
