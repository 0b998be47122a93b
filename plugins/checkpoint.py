"""Checkpoint files: safetensors tensors + a JSON header; written atomically, loaded without pickle."""
from __future__ import annotations

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


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> Path:
    path = Path(path)
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {HEADER_KEY: json.dumps(header, sort_keys=True, default=_json_default)}
    atomic_write_bytes(path, st_save(clean, metadata=meta))
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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
    return tensors, header
