"""A shared training loop: progress bar, seeding, atomic periodic checkpoints and resume (the trained
components themselves are kept by :func:`fc4dfs.zoo.store.train_or_load`).

Every trainable model uses it, so ``--resume`` after a SIGKILL works the same everywhere: the
loop writes ``train_state.pt`` (model, optimiser, scheduler, RNG states, epoch) atomically at most
every ``save_every_s`` seconds and at the end; on start it continues from that file when the
training config matches, and refuses a state written for another config.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from fc4dfs.datasets.storage import atomic_write_bytes
from fc4dfs.plugins.errors import CheckpointMismatchError, ComponentError

STATE_FILE = "train_state.pt"


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator for data order."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


class TrainLoop:
    """Run ``epoch_fn(epoch, rng) -> {metric: value}`` for ``epochs`` epochs with resume.

    ``stateful`` maps names to objects with ``state_dict``/``load_state_dict`` (modules,
    optimisers, schedulers). ``config_hash`` identifies the training configuration.
    """

    def __init__(self, name: str, stateful: dict[str, Any], epochs: int, seed: int,
                 config_hash: str, workdir: Path | None = None, progress: bool = True,
                 save_every_s: float | None = None) -> None:
        self.name = name
        self.stateful = stateful
        self.epochs = int(epochs)
        self.seed = seed
        self.config_hash = config_hash
        self.workdir = Path(workdir) if workdir is not None else None
        self.progress = progress
        self.save_every_s = float(os.environ.get("FC4DFS_CHECKPOINT_EVERY_S", 20.0)) if save_every_s is None \
            else save_every_s
        self.rng = seed_everything(seed)
        self.start_epoch = 0
        self.history: list[dict[str, float]] = []
        self.resumed_from: int | None = None

    @property
    def state_path(self) -> Path | None:
        return self.workdir / f"{self.name}.{STATE_FILE}" if self.workdir else None

    def _save(self, epoch: int) -> None:
        if self.state_path is None:
            return
        blob = {
            "config_hash": self.config_hash,
            "epoch": epoch,
            "history": json.dumps(self.history),
            "np_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "states": {k: v.state_dict() for k, v in self.stateful.items()},
        }
        buf = io.BytesIO()
        torch.save(blob, buf)
        atomic_write_bytes(self.state_path, buf.getvalue())

    def _try_resume(self) -> None:
        path = self.state_path
        if path is None or not path.is_file():
            return
        blob = read_train_state(path)
        if blob.get("config_hash") != self.config_hash:
            raise CheckpointMismatchError(
                f"training state {path} was written for config {blob.get('config_hash')}, "
                f"not {self.config_hash}; delete it or use another run directory")
        for k, v in self.stateful.items():
            v.load_state_dict(blob["states"][k])
        self.rng.bit_generator.state = json.loads(blob["np_rng"])
        torch.set_rng_state(blob["torch_rng"])
        self.history = json.loads(blob["history"])
        self.start_epoch = int(blob["epoch"])
        self.resumed_from = self.start_epoch

    def run(self, epoch_fn: Callable[[int, np.random.Generator], dict[str, float]]) -> list[dict[str, float]]:
        self._try_resume()
        last_save = time.monotonic()
        bar = tqdm(range(self.start_epoch, self.epochs), desc=f"train {self.name}", unit="ep",
                   disable=not self.progress, leave=False, initial=self.start_epoch, total=self.epochs)
        for epoch in bar:
            stats = epoch_fn(epoch, self.rng)
            self.history.append({"epoch": epoch, **{k: float(v) for k, v in stats.items()}})
            if stats:
                bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()})
            if time.monotonic() - last_save >= self.save_every_s:
                self._save(epoch + 1)
                last_save = time.monotonic()
        bar.close()
        self._save(self.epochs)
        return self.history

    def report(self, **extra: Any) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {"epochs": self.epochs, "resumed_from": self.resumed_from, "final": last, **extra}


# --------------------------------------------------------------------------- train or load
class TrainStateError(ComponentError):
    """A training state file (``*.train_state.pt``) is damaged or not one of ours."""


def read_train_state(path: Path) -> dict[str, Any]:
    """The training state saved by :class:`TrainLoop` at ``path``, loaded without executing pickles.

    Raises :class:`TrainStateError` naming the file when it is truncated, foreign or holds anything
    but tensors and plain data (``torch.load(weights_only=True)`` refuses code; its advice to
    disable that is never followed).
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise TrainStateError(f"training state {path} is damaged or not an fc4dfs training state (it holds "
                              "something other than tensors and plain data; it was not executed)") from None
    except Exception as e:  # noqa: BLE001 - any unreadable state is reported the same way
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TrainStateError(f"training state {path} is damaged or not an fc4dfs training state "
                              f"({type(e).__name__}: {first[:120]})") from None
    if not isinstance(blob, dict) or not {"config_hash", "epoch", "states"} <= set(blob):
        raise TrainStateError(f"training state {path} is not an fc4dfs training state (missing fields)")
    return blob
