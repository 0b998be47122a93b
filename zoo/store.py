"""The content-addressed store of trained components: :func:`train_or_load`, the one way every command
(``run``, ``generate``, ``reproduce``) and the metric classifiers get a trained component.

The store is ``$FC4DFS_CACHE/components/`` (shared by every command); one checkpoint per
:func:`store_key`, one file lock beside it.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence as Seq

from fc4dfs.datasets.base import Dataset
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.contracts import Budget, Component
from fc4dfs.plugins.errors import CheckpointMismatchError
from fc4dfs.zoo.training import STATE_FILE, TrainStateError, read_train_state

STORE = "components"


def store_key(component: Component, dataset_fingerprint: str, train_ids: Seq[str], budget: Budget,
              seed: int) -> str:
    """The content address of a trained component.

    Covers the component's config (kind, name, version, options), the dataset fingerprint, the
    training identities, the budget's name, its ``--budget-opt`` overrides and the hyper-parameters
    they resolve to for this component, and the seed.
    """
    table = type(component).budgets
    hp = budget.pick(table) if budget.name in table else dict(budget.overrides)
    return stable_hash({"component": component.config, "dataset": dataset_fingerprint, "train": sorted(train_ids),
                        "budget": budget.name, "overrides": dict(budget.overrides), "hyper_parameters": hp,
                        "seed": int(seed)})


@dataclass
class Trained:
    """What :func:`train_or_load` returns."""

    component: Component
    path: Path  #: the checkpoint in the store
    cached: bool  #: True when loaded, False when trained by this call
    seconds: float  #: training wall time of this call (0 when loaded)


def train_or_load(component: Component, dataset: Dataset, train_ids: Seq[str], budget: Budget, seed: int,
                  device: str = "cpu", progress: bool = True, workdir: Path | None = None,
                  finish: Callable[[Component], None] | None = None, retrain: bool = False,
                  store: Path | None = None, log: Callable[[str], None] | None = None) -> Trained:
    """Train ``component`` on ``dataset.subset(train_ids)`` at ``budget``/``seed``, or load the identical
    training from the content-addressed store.

    The one way every command (``run``, ``generate``, ``reproduce``) and the metric classifiers get a
    trained component. The store is ``cache_dir("components")`` (``$FC4DFS_CACHE/components``) unless
    ``store`` is given; a checkpoint's name is ``<kind>-<name>-<store_key>.safetensors`` and a file
    lock beside it makes a second process wait for the first one's training instead of repeating it.
    A stored checkpoint that is damaged (truncated, overwritten tensor bytes, foreign) or made for
    something else is reported in one line and retrained. ``workdir`` holds the resumable training
    state (default: a folder beside the checkpoint, removed after training, whose damaged states are
    discarded with a one-line warning; a damaged state in a given ``workdir`` raises
    :class:`TrainStateError` naming it); ``finish(component)`` runs after training and
    before saving (e.g. to record a held-out score in ``train_report``); ``retrain`` ignores the store.
    """
    from filelock import FileLock

    from fc4dfs.datasets.storage import cache_dir
    from fc4dfs.plugins.checkpoint import CheckpointError

    say = log or (lambda s: print(s, file=sys.stderr))
    folder = Path(store) if store is not None else cache_dir(STORE)
    folder.mkdir(parents=True, exist_ok=True)
    key = store_key(component, dataset.fingerprint, train_ids, budget, seed)
    path = folder / f"{component.kind}-{component.name.replace('+', 'p')}-{key}.safetensors"
    with FileLock(str(path) + ".lock"):
        if path.is_file() and not retrain:
            try:
                loaded = type(component).load(path, dataset.topology, device=device,
                                              expect_config_hash=component.config_hash)
                return Trained(loaded, path, True, 0.0)
            except CheckpointError as e:
                say(f"warning: stored {component.kind} {component.name!r} is damaged, retraining it: {e}")
            except CheckpointMismatchError as e:
                say(f"warning: stored {component.kind} {component.name!r} does not match, retraining it: {e}")
            except (KeyError, RuntimeError) as e:  # a well-formed file this code cannot restore
                say(f"warning: stored {component.kind} {component.name!r} at {path} cannot be restored "
                    f"({type(e).__name__}: {e}), retraining it")
        work = Path(workdir) if workdir is not None else folder / f"{path.stem}.train"
        work.mkdir(parents=True, exist_ok=True)
        for state in sorted(work.glob(f"*.{STATE_FILE}")):
            if retrain:
                state.unlink()
            elif workdir is None:  # the store's own states heal; a caller's (a run's) are named instead
                try:
                    read_train_state(state)
                except TrainStateError as e:
                    say(f"warning: {e}; discarding it and training from the start")
                    state.unlink()
        t0 = time.perf_counter()
        report = component.fit(dataset.subset(list(train_ids)), budget, seed=seed, device=device, workdir=work,
                               progress=progress)
        seconds = time.perf_counter() - t0
        component.train_report = {**(report or component.train_report or {}), "seconds": seconds}
        if finish is not None:
            finish(component)
        component.save(path)
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return Trained(component, path, False, seconds)
