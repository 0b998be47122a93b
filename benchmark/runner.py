"""The runner: resolve a RunConfig, run its protocol, write the run record and leaderboard rows.

Run directory (``OUT/<run_id>/``)::

    config.json        the resolved RunConfig
    record.json        the immutable result record (written once, at the end; status ok|failed; wall and
                       CPU seconds)
    metrics.json       result rows with every metric (mean, std, details)
    per_item.json      per-item metric values, for paired comparisons between runs
    checkpoints/       trained components (safetensors)
    train/             training states for --resume
    examples.npz/json  a few evaluated test sequences (what `fc4dfs-bench render` draws)

Trained components come from :func:`fc4dfs.zoo.store.train_or_load`: they are kept content-addressed
in the shared store ``$FC4DFS_CACHE/components/`` (the same one ``generate`` uses), so other runs and
commands with the same component, data, budget (with overrides) and seed reuse them; each run folder
keeps its own hard link (or copy) in ``checkpoints/`` so that it stays self-contained.

A run folder is owned by one live process at a time through a lock file (:func:`run_lock_path`):
a second identical run started meanwhile waits for the first one and then reuses its record.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence as Seq

import numpy as np

from fc4dfs.benchmark import leaderboard as lb
from fc4dfs.benchmark import provenance
from fc4dfs.benchmark.config import RunConfig, validate_options
from fc4dfs.benchmark.defaults import DEFAULT_LEADERBOARD, DEFAULT_OUT
from fc4dfs.benchmark.errors import UserError, user_error_types
from fc4dfs.datasets.base import Dataset, Sequence
from fc4dfs.datasets.storage import atomic_write_json, stable_hash
from fc4dfs.plugins.contracts import Budget, Component, EvalContext, EvalItem, Protocol, ResultRow
from fc4dfs.plugins.manager import Registry, registry as global_registry


#: the decoder column of a leaderboard row produced by a direct pipeline
PIPELINE_DECODER = "direct"


class RunExistsError(UserError):
    """The run folder exists from an unfinished run whose process has ended."""


class RunBusyError(UserError):
    """Another live process holds the run folder's lock."""


def load_dataset(name: str, options: dict[str, Any] | None = None, reg: Registry | None = None,
                 progress: bool = True) -> Dataset:
    """The registered dataset ``name`` built with ``options`` (the one way every command loads a dataset).

    ``progress`` reaches a factory that takes a ``progress`` argument (bars while a cache is built)
    unless ``options`` set it.

    Raises :class:`UserError` (one line, naming the dataset) when the dataset rejects its options
    (``TypeError``/``ValueError`` from its factory), and ``UnknownComponentError`` for an unknown name.
    """
    options = dict(options or {})
    factory = (reg or global_registry()).load("dataset", name)
    shown = {"progress": progress} if "progress" in inspect.signature(factory).parameters else {}
    try:
        return factory(**{**shown, **options})
    except (TypeError, ValueError) as e:
        raise UserError(f"dataset {name!r} rejected its options {sorted(options)}: {e}") from None
    except ValueError as e:  # a factory checks its options and files with ValueError
        if isinstance(e, user_error_types()):
            raise
        raise UserError(f"dataset {name!r}: {e}") from None


def instantiate(reg: Registry, kind: str, name: str, options: dict[str, Any]) -> Component:
    """A component instance: the registered variant's options overlaid with ``options``."""
    spec = reg.get(kind, name)
    cls = spec.load()
    return cls(**{**spec.options, **options})


@dataclass
class RunContext:
    """What a protocol gets: the config, the dataset and helpers to train and evaluate."""

    config: RunConfig
    registry: Registry
    dataset: Dataset
    run_dir: Path
    #: the component store (None: ``$FC4DFS_CACHE/components``, shared with ``generate``)
    components_dir: Path | None = None
    progress: bool = True
    retrain_classifier: bool = False
    resume: bool = False
    #: an evaluator file (``run --evaluator``) scoring CA, CA (mesh) and FID; None: the shipped one or the store's
    evaluator: Path | None = None
    _banks: dict[str, Any] = field(default_factory=dict)
    examples: list[tuple[EvalItem, str]] = field(default_factory=list)
    #: the protocol's options: its declared defaults overlaid with the validated --protocol-opt values
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def budget(self) -> Budget:
        return Budget(self.config.budget, dict(self.config.budget_overrides))

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def device(self) -> str:
        return self.config.device

    def option(self, key: str) -> Any:
        """A protocol option (declared on the Protocol; validated and defaulted before the run)."""
        return self.options[key]

    # -- components ------------------------------------------------------------------------
    def make(self, kind: str, name: str | None = None, **overrides: Any) -> Component:
        if kind == "pipeline":
            name = name or self.config.pipeline
            opts = {**self.config.pipeline_options, **overrides} if name == self.config.pipeline else overrides
        elif kind == "generator":
            name = name or self.config.generator
            opts = {**self.config.generator_options, **overrides} if name == self.config.generator else overrides
        else:
            name = name or self.config.decoder
            opts = {**self.config.decoder_options, **overrides} if name == self.config.decoder else overrides
        if not name:
            raise UserError(f"protocol {self.config.protocol!r} needs a {kind}: pass "
                            f"--{'pipeline' if kind == 'pipeline' else kind[:3]} NAME")
        return instantiate(self.registry, kind, name, opts)

    def fit(self, component: Component, train_ids: Seq[str], tag: str) -> tuple[Component, float]:
        """Train ``component`` on ``train_ids`` through :func:`fc4dfs.zoo.store.train_or_load` (or load the
        identical training from the store); the checkpoint is linked into ``checkpoints/<tag>.safetensors``.

        Returns the trained component and the seconds this call spent training (0 when loaded).
        """
        from fc4dfs.zoo.store import train_or_load
        from fc4dfs.zoo.training import TrainStateError, read_train_state

        workdir = self.run_dir / "train" / tag
        if self.resume:  # a resumed run's own states are verified even when the store already has the result
            for state in sorted(workdir.glob("*.train_state.pt")) if workdir.is_dir() else []:
                try:
                    read_train_state(state)
                except TrainStateError as e:
                    raise UserError(f"{e}; delete it, or pass --force to start the run over") from None
        trained = train_or_load(component, self.dataset, train_ids, self.budget, self.seed, device=self.device,
                                progress=self.progress, workdir=workdir, store=self.components_dir)
        _link_or_copy(trained.path, self.run_dir / "checkpoints" / f"{tag}.safetensors")
        self.release_frames()
        return trained.component, trained.seconds

    def release_frames(self) -> None:
        """Drop the dataset's mapped frames from this process's memory (see ``release_mapped``): a run's
        peak memory then does not grow with the number of sequences it has read."""
        from fc4dfs.datasets.storage import release_mapped

        release_mapped(*(s.frames for s in self.dataset.sequences))

    # -- evaluation ------------------------------------------------------------------------
    def eval_context(self, train_ids: Seq[str], classifiers: bool = True, design: str = "default") -> EvalContext:
        """An EvalContext whose classifiers are trained on ``train_ids`` (once per dataset, cached).

        With ``classifiers=False`` it has none, so metrics that need a classifier do not apply.
        ``design`` names the classifier designs (:data:`fc4dfs.benchmark.classifiers.DESIGNS`: the suite's
        ``default`` — the shipped frozen evaluator where there is one — or the ``papers``' own, trained
        through the component store); an evaluator file given to the run scores in either case.
        """
        key = stable_hash([sorted(train_ids), design])

        def classifier(kind: str) -> Any:
            bank = self._banks.get(key)
            if bank is None:
                from fc4dfs.benchmark.classifiers import DESIGNS, ClassifierBank, classifier_budget

                bank = ClassifierBank(self.dataset, list(train_ids), seed=0, device=self.device,
                                      retrain=self.retrain_classifier, budget=classifier_budget(self.budget),
                                      store=self.components_dir, evaluator=self.evaluator, options=DESIGNS[design])
                self._banks[key] = bank
            trained = bank.get(kind)
            self.release_frames()
            return trained

        return EvalContext(self.dataset.topology, list(self.dataset.labels), seed=self.seed,
                           classifier=classifier if classifiers and _has_classifiers() else None)

    def evaluator_record(self) -> dict[str, Any] | None:
        """What scored CA, CA (mesh) and FID in this run: ``{"hash", "source", "classifiers"}`` (hashes of
        several training splits joined by ``+``), or None when no classifier was used."""
        used = [e for e in (bank.evaluator() for bank in self._banks.values()) if e is not None]
        if not used:
            return None
        if len(used) == 1:
            return used[0].describe()
        return {"hash": "+".join(e.content_hash for e in used), "source": "; ".join(e.source for e in used),
                "splits": [e.describe() for e in used]}

    def keep_example(self, item: EvalItem, method: str, limit: int = 4) -> None:
        if len(self.examples) < limit:
            self.examples.append((item, method))

    def iterate(self, seqs: Seq[Any], desc: str):
        """``seqs`` with a progress bar; the dataset's mapped frames are released after each one."""
        from tqdm.auto import tqdm

        for seq in tqdm(seqs, desc=desc, unit="seq", leave=False, disable=not self.progress):
            yield seq
            self.release_frames()


def _has_classifiers() -> bool:
    import importlib.util

    return importlib.util.find_spec("fc4dfs.benchmark.classifiers") is not None


def _link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (a hard link, else a copy), replacing what was there atomically."""
    if not src.exists() or (dst.exists() and os.path.samefile(src, dst)):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# --------------------------------------------------------------------------- execution
@dataclass
class RunResult:
    config: RunConfig
    run_dir: Path
    record: dict[str, Any]
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "ok"


def execute(config: RunConfig, out_dir: Path = DEFAULT_OUT, leaderboard: Path | None = DEFAULT_LEADERBOARD,
            resume: bool = False, force: bool = False, progress: bool = True, reg: Registry | None = None,
            retrain_classifier: bool = False, render: bool = True, components_dir: Path | None = None,
            lock_timeout: float | None = None,
            log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
            evaluator: Path | None = None) -> RunResult:
    """Run one config end to end and return its record. A crash is recorded, then re-raised.

    ``evaluator`` is an evaluator file (``fc4dfs-bench evaluator train``) that scores CA, CA (mesh)
    and FID instead of the shipped or stored classifiers; its content hash goes into every row and
    into ``config.evaluator`` (filled in when None), hence into the run id: a finished run is reused
    only when it was scored by the same evaluator. UserError when ``config.evaluator`` names another
    evaluator than the file, or names one and no file is given.

    ``components_dir`` overrides the component store (default ``$FC4DFS_CACHE/components``). While
    another live process writes the same run, this one waits (``lock_timeout`` s at most, None =
    unbounded) and then reuses the finished record; :class:`RunBusyError` when the wait times out.
    With ``config.threads`` set, torch and numpy's BLAS use that many CPU threads for the run
    (:func:`thread_limit`; restored afterwards).
    """
    config = _with_evaluator(config, evaluator)
    reg = reg or global_registry()
    spec = reg.get("protocol", config.protocol)
    for kind in ("generator", "decoder", "pipeline", "dataset"):
        name = getattr(config, kind)
        if name:
            reg.get(kind, name)  # unknown names fail here, before any work
    protocol = spec.load()()
    check_components(reg, config, protocol)
    protocol_options = validate_options(reg, config)  # bad options fail here, before any work
    out_dir = Path(out_dir)
    lock = _acquire_run_lock(run_lock_path(out_dir / config.run_id), config.run_id, lock_timeout, log)
    try:
        with thread_limit(config.threads):
            return _execute_locked(config, protocol, protocol_options, reg, out_dir, leaderboard, resume, force,
                                   progress, retrain_classifier, render, components_dir, log, evaluator)
    finally:
        lock.release()


def _with_evaluator(config: RunConfig, evaluator: Path | None) -> RunConfig:
    """``config`` naming the content hash of the ``evaluator`` file it is scored by (see :func:`execute`)."""
    if evaluator is None:
        if config.evaluator is not None:
            raise UserError(f"run {config.run_id} is scored by evaluator {config.evaluator}: pass its file "
                            "(--evaluator FILE)")
        return config
    from dataclasses import replace

    from fc4dfs.benchmark.evaluators import file_hash

    found = file_hash(evaluator)
    if config.evaluator not in (None, found):
        raise UserError(f"--evaluator {evaluator}: its content hash is {found}, the run config names "
                        f"evaluator {config.evaluator}")
    return replace(config, evaluator=found)


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads for torch and for the BLAS / OpenMP pools that numpy and
    scipy call (through ``threadpoolctl``), restored afterwards; nothing changes when ``threads`` is None.

    A result depends on the summation order, hence on these counts (a PCA's SVD with two BLAS threads
    differs from one in the last bits): fixing both makes a run bit-identical wherever it executes, in this
    process or in a Ray worker (``RunConfig.threads``)."""
    if not threads:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def run_lock_path(run_dir: Path) -> Path:
    """The lock file of a run folder: in the cache (``$FC4DFS_CACHE/locks/``), keyed by the folder's absolute
    path, so that taking it writes nothing into the runs folder."""
    from fc4dfs.datasets.storage import cache_dir

    return cache_dir("locks") / f"run-{stable_hash(str(Path(run_dir).resolve()))}.lock"


def _acquire_run_lock(path: Path, run_id: str, timeout: float | None, log: Callable[[str], None]) -> Any:
    """Hold ``path`` for this process; wait (up to ``timeout`` s, None = as long as it takes) while another
    live process holds it. A dead owner's lock is released by the operating system."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
        return lock
    except Timeout:
        log(f"run {run_id} is being written by another live process (lock {path}); waiting for it to finish")
    try:
        lock.acquire(timeout=-1 if timeout is None else timeout)
    except Timeout:
        raise RunBusyError(f"run {run_id} is still being written by another live process after {timeout:g} s "
                           f"(lock {path}); wait for it to finish, then run again to reuse its record") from None
    return lock


def _execute_locked(config: RunConfig, protocol: Any, protocol_options: dict[str, Any], reg: Registry,
                    out_dir: Path, leaderboard: Path | None, resume: bool, force: bool, progress: bool, retrain_classifier: bool, render: bool,
                    components_dir: Path | None, log: Callable[[str], None],
                    evaluator: Path | None = None) -> RunResult:
    run_dir = out_dir / config.run_id
    record_path = run_dir / "record.json"
    new_dir = not run_dir.exists()
    if not new_dir:
        prev = _read_json(record_path)
        stale = stale_versions(prev, reg, config)
        if stale and not force:
            log(f"run {config.run_id} was recorded with {stale}; running it again")
        if force or stale:
            shutil.rmtree(run_dir)
        elif prev and prev.get("status") == "ok":
            log(f"run {config.run_id} already finished; reusing its record (--force to redo)")
            if leaderboard is not None:
                lb.append_rows(leaderboard, prev["rows_flat"])
            return RunResult(config, run_dir, prev, reused=True)
        elif not resume:
            raise RunExistsError(f"run directory {run_dir} exists from an unfinished run whose process has "
                                 "ended; pass --resume to continue it or --force to start over")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", config.to_dict())
    started, t0, cpu0 = provenance.utc_now(), time.perf_counter(), time.process_time()
    base: dict[str, Any] = {
        "run_id": config.run_id, "config": config.to_dict(), "config_hash": config.hash, "started_utc": started,
        "provenance": provenance.collect(config.device, [(p.distribution, p.version) for p in reg.plugins]),
        "versions": _versions(reg, config),
    }
    ctx: RunContext | None = None
    try:
        dataset = load_dataset(config.dataset, config.dataset_options, reg, progress=progress)
        base["dataset"] = {"name": dataset.name, "hash": dataset.fingerprint, "version": dataset.version,
                           "topology": dataset.topology.hash}
        ctx = RunContext(config, reg, dataset, run_dir, components_dir, progress=progress,
                         retrain_classifier=retrain_classifier, resume=resume, options=protocol_options,
                         evaluator=evaluator)
        rows: list[ResultRow] = protocol.run(ctx)
        base["evaluator"] = ctx.evaluator_record()
        for r in rows:
            if not isinstance(r, ResultRow):
                raise TypeError(f"protocol {config.protocol!r} returned a {type(r).__name__} row; Protocol.run "
                                "must return fc4dfs.plugins.contracts.ResultRow objects")
        status, error = "ok", None
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - recorded, then re-raised
        if new_dir and isinstance(e, user_error_types()):
            shutil.rmtree(run_dir, ignore_errors=True)  # refused input: no run happened, leave nothing
            raise
        rows, status = [], "failed"
        error = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        record = {**base, "status": status, "error": error, "finished_utc": provenance.utc_now(),
                  "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0,
                  "rows": [], "rows_flat": []}
        atomic_write_json(run_dir / "record.failed.json", record)
        if leaderboard is not None and not isinstance(e, (KeyboardInterrupt, UserError)):
            lb.append_rows(leaderboard, [_flat_failed(record, config)])
        raise
    wall = time.perf_counter() - t0
    flat = [_flat(r, base, config, wall) for r in rows]
    # CPU time of this process (all its threads) while the run ran: wall time under load is no measure of cost
    record = {**base, "status": status, "error": None, "finished_utc": provenance.utc_now(), "wall_seconds": wall,
              "cpu_seconds": time.process_time() - cpu0,
              "rows": [r.to_dict() for r in rows], "rows_flat": flat}
    atomic_write_json(run_dir / "metrics.json", record["rows"])
    atomic_write_json(run_dir / "per_item.json", {r.key: r.per_item for r in rows if r.per_item})
    _save_examples(ctx)
    atomic_write_json(record_path, record)
    if leaderboard is not None:
        lb.append_rows(leaderboard, flat)
    if render and ctx.examples:
        _render(run_dir, log)
    return RunResult(config, run_dir, record)


def check_components(reg: Registry, config: RunConfig, protocol: Protocol) -> None:
    """UserError unless the config names exactly the components its protocol runs: a pipeline
    (only for protocols that run pipelines, and never beside a generator or decoder) or every
    component in ``protocol.needs``."""
    if config.pipeline:
        if not protocol.runs_pipelines:
            runs = [s.name for s in reg.specs("protocol") if getattr(s.load(), "runs_pipelines", False)]
            raise UserError(f"--pipeline: protocol {config.protocol!r} does not run direct pipelines "
                            f"(protocols that do: {', '.join(runs) or 'none'})")
        given = [f"--{k[:3]}" for k in ("generator", "decoder") if getattr(config, k)]
        if given:
            raise UserError(f"--pipeline replaces the generator and decoder; drop {' and '.join(given)}")
        return
    for need in protocol.needs:
        if not getattr(config, need):
            alt = " or --pipeline NAME" if protocol.runs_pipelines else ""
            raise UserError(f"protocol {config.protocol!r} needs --{need[:3]} NAME{alt} "
                            f"(available: {', '.join(reg.names(need))})")


def _render(run_dir: Path, log: Callable[[str], None]) -> None:
    try:
        from fc4dfs.benchmark.viz import render_examples
    except ImportError:
        return
    try:
        render_examples(run_dir, max_examples=2, time_budget_s=20.0)
    except Exception as e:  # noqa: BLE001 - pictures must never fail a finished run
        log(f"warning: rendering examples failed: {type(e).__name__}: {e}")


def stale_versions(record: dict[str, Any] | None, reg: Registry, config: RunConfig) -> str:
    """What changed since a finished ``record`` was written: e.g. ``"generator version 1 (now 2)"``, or ""
    when it is current (or not a finished record). The run id names components, not their versions, so
    a finished run whose protocol, dataset or component has a new version is run again, never reused."""
    if not record or record.get("status") != "ok" or "versions" not in record:
        return ""
    now = _versions(reg, config)
    return ", ".join(f"{kind} version {record['versions'].get(kind)} (now {v})"
                     for kind, v in now.items() if record["versions"].get(kind) != v)


def _versions(reg: Registry, config: RunConfig) -> dict[str, str | None]:
    out: dict[str, str | None] = {"protocol": reg.get("protocol", config.protocol).version,
                                  "dataset": reg.get("dataset", config.dataset).version}
    for kind in ("generator", "decoder", "pipeline"):
        name = getattr(config, kind)
        out[kind] = reg.get(kind, name).version if name else None
    return out


def _flat(row: ResultRow, base: dict[str, Any], config: RunConfig, wall: float) -> dict[str, Any]:
    prov = base["provenance"]
    names, versions, options = {}, {}, {}
    for kind in ("generator", "decoder"):
        if config.pipeline and not row.reference:
            # a direct pipeline fills the generator column; its decoder column says "direct"
            names[kind] = config.pipeline if kind == "generator" else PIPELINE_DECODER
            versions[kind] = (base["versions"].get("pipeline") or "") if kind == "generator" else ""
            options[kind] = _opts(config.pipeline_options) if kind == "generator" else ""
            continue
        own = getattr(config, kind) or ""
        name = ResultRow.REFERENCE_NAME if row.reference else (getattr(row, kind) or own)
        mine = bool(own) and name == own
        names[kind] = name
        versions[kind] = (base["versions"][kind] or "") if mine else ""
        options[kind] = _opts(getattr(config, f"{kind}_options") if mine else {})
    out = {
        "run_id": config.run_id, "utc_time": base["started_utc"], "status": "ok", "protocol": config.protocol,
        "setting": row.setting, "dataset": config.dataset, "dataset_hash": base["dataset"]["hash"],
        "dataset_version": base["dataset"]["version"], "generator": names["generator"],
        "generator_version": versions["generator"], "generator_options": options["generator"],
        "decoder": names["decoder"], "decoder_version": versions["decoder"], "decoder_options": options["decoder"],
        "budget": config.budget, "budget_overrides": _opts(config.budget_overrides),
        "protocol_options": _opts(config.protocol_options), "protocol_version": base["versions"]["protocol"],
        "seed": config.seed, "fold": "" if row.fold is None else row.fold, "n_items": row.n_items,
        "train_seconds": round(float(row.train_seconds), 3), "eval_seconds": round(float(row.eval_seconds), 3),
        "device": prov["device_name"], "package_version": prov["package_version"],
        "torch_version": prov["torch_version"],
        "git_commit": (prov["git_commit"] or "") + ("-dirty" if prov.get("git_dirty") else ""),
        "config_hash": config.hash, "error": "",
        "evaluator": (base.get("evaluator") or {}).get("hash", "") if _uses_classifier(row) else "",
        "fid_features": _fid_features(row),
    }
    out.update(row.metrics)
    out["row_id"] = lb.row_id(out)
    return out


#: the metrics scored by the evaluator's classifiers
_EVALUATOR_METRICS = ("ca", "ca_mesh", "fid")


def _uses_classifier(row: ResultRow) -> bool:
    return any(m in row.metrics for m in _EVALUATOR_METRICS)


def _fid_features(row: ResultRow) -> str:
    """``"<D>-d x <N>"``: the FID's feature dimension and sample count (items), or "" without FID."""
    fid = row.details.get("fid") if isinstance(row.details, dict) else None
    if "fid" not in row.metrics or not isinstance(fid, dict) or "feature_dim" not in fid:
        return ""
    return f"{fid['feature_dim']}-d x {row.n_items}"


def _flat_failed(record: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    out = {"run_id": config.run_id, "utc_time": record["started_utc"], "status": "failed",
           "protocol": config.protocol, "dataset": config.dataset,
           "generator": config.pipeline or config.generator or "",
           "decoder": PIPELINE_DECODER if config.pipeline else config.decoder or "", "budget": config.budget,
           "budget_overrides": _opts(config.budget_overrides), "protocol_options": _opts(config.protocol_options),
           "seed": config.seed,
           "config_hash": config.hash, "setting": f"failed@{record['finished_utc']}",
           "error": f"{record['error']['type']}: {record['error']['message']}"[:300]}
    out["row_id"] = lb.row_id(out)
    return out


def _opts(o: dict[str, Any]) -> str:
    return json.dumps(o, sort_keys=True) if o else ""


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _save_examples(ctx: RunContext) -> None:
    if not ctx.examples:
        return
    topo = ctx.dataset.topology
    arrays: dict[str, np.ndarray] = {"faces": topo.faces, "lmk_face_idx": topo.lmk_face_idx,
                                     "lmk_bary": topo.lmk_bary}
    meta = []
    for i, (it, method) in enumerate(ctx.examples):
        for key, val in (("gt_mesh", it.gt_mesh), ("pred_mesh", it.pred_mesh), ("gt_lm", it.gt_landmarks),
                         ("pred_lm", it.pred_landmarks)):
            if val is not None:
                arrays[f"{key}_{i}"] = np.asarray(val, dtype=np.float32)
        meta.append({"index": i, "identity": it.identity, "label": it.label, "fps": it.fps, "method": method})
    tmp = ctx.run_dir / ".examples.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, ctx.run_dir / "examples.npz")
    atomic_write_json(ctx.run_dir / "examples.json", meta)


def test_sequences(dataset: Dataset, ids: Seq[str]) -> list[Sequence]:
    keep = set(ids)
    return [s for s in dataset.sequences if s.identity in keep]
