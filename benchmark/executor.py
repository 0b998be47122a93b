"""Executors: where the runs of a plan (``reproduce``, ``run --seeds``, ``sweep``) execute.

``local`` (the default) runs them one after another in this process. ``ray`` submits each run as a
Ray task with declared resources (``cpus_per_run``, ``gpus_per_run``) to a local Ray started with
this machine's cores, or to an existing cluster (``address``). Either way the same function,
:func:`run_one`, executes a run, so both executors give the same run folders and, at the same
``RunConfig.threads``, the same numbers bit for bit.

Task graph: a component that several runs of the plan train identically (same component, data,
training identities, budget and seed, e.g. the decoder of twelve Table 1 rows) is trained once by a
component task, through the same content-addressed component store as :meth:`RunContext.fit`; the
runs that need it are submitted with that task as a dependency, so Ray starts them only after it.
A component task that fails does not fail its runs: it returns the error (its status line says so) and
each run trains the component itself, recording the error in its run folder if it fails again.

Who writes what: workers write the run folders (``OUT/<run_id>/`` and the component store), so
``OUT`` must be one folder every worker and the driver see (a shared filesystem on a cluster); the
driver alone appends the leaderboard rows, from the records the tasks return, as they complete. One
writer keeps the leaderboard off file locks across machines (advisory locks are unreliable on network
filesystems) and lets it live on the driver's disk. A failed task loses nothing else: its error is
recorded, the other tasks go on, and re-running the same command reuses every finished run.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from fc4dfs.benchmark import leaderboard as lb
from fc4dfs.benchmark.config import RunConfig
from fc4dfs.benchmark.errors import UserError, user_error_types
from fc4dfs.benchmark.runner import RunResult

EXECUTORS = ("local", "ray")


@dataclass
class Job:
    """One run of a plan: its config and whether to render its examples."""

    config: RunConfig
    label: str = ""
    render: bool = True


@dataclass
class Outcome:
    """What a run came to: its result, or the error it failed with (``user_error``: refused input)."""

    job: Job
    result: RunResult | None = None
    error: str | None = None
    user_error: bool = False
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.error is None


@dataclass
class Settings:
    """How to execute: the run options shared by every run of a plan."""

    out_dir: Path
    leaderboard: Path | None
    resume: bool = True
    force: bool = False
    retrain_classifier: bool = False
    progress: bool = True
    #: False: each run's own messages (stderr) and training bars are shown, as a single ``run`` shows them
    quiet: bool = True
    #: the evaluator file scoring CA, CA (mesh) and FID (``run --evaluator``; None: the default)
    evaluator: Path | None = None


def run_one(job: Job, settings: Settings, *deps: Any, keep_exception: bool = False, reg: Any = None) -> Outcome:
    """Execute (or reuse) one run without touching the leaderboard; return its outcome and the rows the
    caller appends. ``deps`` are the component tasks' results (unused: they only order the tasks)."""
    from fc4dfs.benchmark import runner

    t0 = time.perf_counter()
    out = Outcome(job)
    try:
        out.result = runner.execute(job.config, out_dir=settings.out_dir, leaderboard=None, resume=settings.resume,
                                    force=settings.force, progress=settings.progress and not settings.quiet,
                                    render=job.render, retrain_classifier=settings.retrain_classifier, reg=reg,
                                    log=(lambda s: None) if settings.quiet else _stderr,
                                    evaluator=settings.evaluator)
        out.rows = list(out.result.record.get("rows_flat", []))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - the run folder has the traceback; the plan goes on
        out.error = f"{type(e).__name__}: {e}"
        out.user_error = isinstance(e, user_error_types())
        if keep_exception:
            out.exception = e
        failed = runner._read_json(Path(settings.out_dir) / job.config.run_id / "record.failed.json")
        if failed and not isinstance(e, UserError):
            out.rows = [runner._flat_failed(failed, job.config)]
    out.seconds = time.perf_counter() - t0
    return out


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


# --------------------------------------------------------------------------- shared components
@dataclass(frozen=True)
class ComponentTask:
    """A component several runs train identically: trained once before them."""

    key: str
    kind: str
    config: RunConfig
    train_ids: tuple[str, ...]


def shared_components(jobs: Sequence[Job], reg: Any, progress: bool = False
                      ) -> tuple[list[ComponentTask], dict[str, list[str]]]:
    """The components that two or more runs of ``jobs`` would train identically (same
    :func:`fc4dfs.zoo.store.store_key`), and for each run id the keys of those it needs; from each
    protocol's :meth:`~fc4dfs.plugins.contracts.Protocol.planned_fits`. ``progress``: bars while a
    dataset's cache is built."""
    from fc4dfs.benchmark.config import validate_options
    from fc4dfs.benchmark.runner import RunContext, load_dataset
    from fc4dfs.datasets.storage import stable_hash
    from fc4dfs.zoo.store import store_key

    datasets: dict[str, Any] = {}
    found: dict[str, ComponentTask] = {}
    users: dict[str, set[str]] = {}
    needs: dict[str, list[str]] = {}
    for job in jobs:
        cfg = job.config
        protocol = reg.load("protocol", cfg.protocol)()
        dkey = stable_hash([cfg.dataset, cfg.dataset_options])
        if dkey not in datasets:
            datasets[dkey] = load_dataset(cfg.dataset, cfg.dataset_options, reg, progress=progress)
        ctx = RunContext(cfg, reg, datasets[dkey], Path("."), progress=False,
                         options=validate_options(reg, cfg))
        try:
            planned = [(kind, train_ids, ctx.make(kind)) for kind, train_ids in protocol.planned_fits(ctx)]
        except Exception:  # noqa: BLE001 - the run itself fails the same way and records why
            planned = []
        keys = []
        for kind, train_ids, component in planned:
            key = store_key(component, ctx.dataset.fingerprint, train_ids, ctx.budget, cfg.seed)
            found.setdefault(key, ComponentTask(key, kind, cfg, tuple(train_ids)))
            users.setdefault(key, set()).add(cfg.run_id)
            keys.append(key)
        needs[cfg.run_id] = keys
    keep = {k for k in found if len(users[k]) > 1}
    return [found[k] for k in keep], {rid: [k for k in ks if k in keep] for rid, ks in needs.items()}


@dataclass
class ComponentOutcome:
    """What a component task came to: trained (or found in the store: ``reused``), or its error text."""

    task: ComponentTask
    error: str | None = None
    reused: bool = False
    seconds: float = 0.0


def train_component(task: ComponentTask) -> ComponentOutcome:
    """Train (or find in the component store) one shared component, as the runs' ``ctx.fit`` would.

    Never raises for a failed training: the outcome carries the error text (the runs that need the
    component train it themselves and record the error in their run folders)."""
    from fc4dfs.benchmark.config import validate_options
    from fc4dfs.benchmark.runner import RunContext, load_dataset, thread_limit
    from fc4dfs.plugins.manager import registry
    from fc4dfs.zoo.store import train_or_load

    t0 = time.perf_counter()
    out = ComponentOutcome(task)
    try:
        reg, cfg = registry(), task.config
        with thread_limit(cfg.threads):
            ctx = RunContext(cfg, reg, load_dataset(cfg.dataset, cfg.dataset_options, reg, progress=False), Path("."),
                             progress=False, options=validate_options(reg, cfg))
            trained = train_or_load(ctx.make(task.kind), ctx.dataset, list(task.train_ids), ctx.budget, cfg.seed,
                                    device=cfg.device, progress=False, log=lambda s: None)
        out.reused = trained.cached
    except Exception as e:  # noqa: BLE001 - the runs that need it train it themselves and record the error
        out.error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    out.seconds = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- executors
class Progress:
    """One bar for the plan (every run, and with Ray every shared component task); a status line per
    task as it completes (``ok``, ``reused`` or ``FAILED (why)``). Without a bar (``--no-progress``,
    ``FC4DFS_PROGRESS=0``) only the failures are logged."""

    def __init__(self, total: int, desc: str, enabled: bool, log: Callable[[str], None]):
        from tqdm.auto import tqdm

        self.enabled = enabled and total > 1
        self.bar = tqdm(total=total, desc=desc, unit="task", disable=not self.enabled)
        self.log = log
        self.done = 0
        self.total = total

    def finished(self, out: Outcome | ComponentOutcome) -> None:
        self.done += 1
        if isinstance(out, ComponentOutcome):
            t = out.task
            what = f"component {t.kind} {getattr(t.config, t.kind, '')} for {len(t.train_ids)} identities ({t.key})"
            error, reused = out.error, out.reused
            if error:
                error = f"{error.splitlines()[0]}; the runs that need it train it themselves"
        else:
            cfg = out.job.config
            what = f"{out.job.label + ' ' if out.job.label else ''}{cfg.run_id}"
            error = None if out.ok else (out.error or "no result")
            reused = bool(out.result and out.result.reused)
        status = f"FAILED ({error.splitlines()[0][:200]})" if error else ("reused" if reused else "ok")
        line = f"[{self.done}/{self.total}] {status:<6} {what} ({out.seconds:.1f} s)"
        if self.enabled:
            self.bar.write(line, file=sys.stderr)
            self.bar.update(1)
        elif error:
            self.log(line)

    def close(self) -> None:
        self.bar.close()


def _dedupe(jobs: Sequence[Job]) -> list[Job]:
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.config.run_id, job)
    return list(seen.values())


def _append(settings: Settings, out: Outcome) -> None:
    if settings.leaderboard is not None and out.rows:
        lb.append_rows(settings.leaderboard, out.rows)


class LocalExecutor:
    """Runs one after another in this process (today's behaviour).

    ``stop_on_error``: re-raise a run's exception at once, as a single ``run`` always has.
    """

    name = "local"

    def __init__(self, stop_on_error: bool = False):
        self.stop_on_error = stop_on_error

    def run(self, jobs: Sequence[Job], settings: Settings, reg: Any = None, desc: str = "runs",
            log: Callable[[str], None] = print) -> dict[str, Outcome]:
        unique = _dedupe(jobs)
        progress = Progress(len(unique), desc, settings.progress, log)
        outcomes: dict[str, Outcome] = {}
        try:
            for job in unique:
                out = run_one(job, settings, keep_exception=True, reg=reg)
                _append(settings, out)
                outcomes[job.config.run_id] = out
                progress.finished(out)
                if out.exception is not None and self.stop_on_error:
                    raise out.exception
        finally:
            progress.close()
        return outcomes


class RayExecutor:
    """Each run a Ray task needing ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs; shared components
    first (see the module docstring). ``address``: join that cluster (``auto``: the one ``ray start``
    made on this machine); none: start a local Ray with this machine's cores (or reuse the Ray this
    process already initialised)."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0):
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run

    def _init(self) -> Any:
        try:
            import ray
        except ImportError:
            raise UserError('--executor ray needs Ray: pip install -e ".[distributed]"') from None
        if not ray.is_initialized():
            env = {k: v for k, v in os.environ.items() if k.startswith("FC4DFS_") or k == "PYTHONPATH"}
            try:
                # "local": a new local Ray even where `ray start` left a cluster (None would join that one)
                ray.init(address=self.address or "local", include_dashboard=False, log_to_driver=False,
                         configure_logging=False, runtime_env={"env_vars": env} if self.address else None)
            except ConnectionError as e:
                raise UserError(f"--ray-address {self.address}: {e}") from None
        total = ray.cluster_resources()
        if self.cpus_per_run > total.get("CPU", 0) or self.gpus_per_run > total.get("GPU", 0):
            raise UserError(f"--cpus-per-run {self.cpus_per_run:g} / --gpus-per-run {self.gpus_per_run:g}: the Ray "
                            f"cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs")
        return ray

    def run(self, jobs: Sequence[Job], settings: Settings, reg: Any = None, desc: str = "runs",
            log: Callable[[str], None] = print) -> dict[str, Outcome]:
        from fc4dfs.plugins.manager import registry

        ray = self._init()
        # workers may start in another folder (a cluster's `ray start`): they get the absolute runs folder
        settings = replace(settings, out_dir=Path(settings.out_dir).resolve(),
                           evaluator=Path(settings.evaluator).resolve() if settings.evaluator else None)
        unique = _dedupe(jobs)
        reused, todo = [], []
        for job in unique:
            rec = _finished(settings, job.config, reg or registry()) if not settings.force else None
            (reused if rec else todo).append(job)
        tasks, needs = shared_components(todo, reg or registry(), settings.progress)
        res = dict(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=0)
        component_task = ray.remote(train_component).options(**res)
        run_task = ray.remote(run_one).options(**res)
        pending: dict[Any, Job | ComponentTask] = {component_task.remote(t): t for t in tasks}
        refs = {t.key: ref for ref, t in pending.items()}
        pending.update({run_task.remote(job, settings, *[refs[k] for k in needs.get(job.config.run_id, [])]): job
                        for job in todo})
        progress = Progress(len(unique) + len(tasks), desc, settings.progress, log)
        outcomes: dict[str, Outcome] = {}
        try:
            for job in reused:
                out = run_one(job, settings, reg=reg)
                _append(settings, out)
                outcomes[job.config.run_id] = out
                progress.finished(out)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                what = pending.pop(done[0])
                try:
                    out = ray.get(done[0])
                except Exception as e:  # noqa: BLE001 - a worker died (killed, out of memory): only this task
                    error = f"{type(e).__name__}: {e}"
                    out = ComponentOutcome(what, error=error) if isinstance(what, ComponentTask) else Outcome(
                        what, error=error)
                if isinstance(out, Outcome):
                    _append(settings, out)
                    outcomes[out.job.config.run_id] = out
                progress.finished(out)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            progress.close()
        return outcomes


def _finished(settings: Settings, config: RunConfig, reg: Any) -> bool:
    from fc4dfs.benchmark.runner import _read_json, stale_versions

    rec = _read_json(Path(settings.out_dir) / config.run_id / "record.json")
    return bool(rec and rec.get("status") == "ok" and not stale_versions(rec, reg, config))


def make_executor(name: str, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
                  stop_on_error: bool = False) -> LocalExecutor | RayExecutor:
    """The executor ``name`` (``local`` or ``ray``); UserError for Ray options given to ``local``."""
    if name == "local":
        if address is not None:
            raise UserError("--ray-address needs --executor ray")
        return LocalExecutor(stop_on_error=stop_on_error)
    if name == "ray":
        return RayExecutor(address, cpus_per_run, gpus_per_run)
    raise UserError(f"--executor: unknown {name!r}; choose from {', '.join(EXECUTORS)}")


def threads_for(executor: str, threads: int | None, cpus_per_run: float) -> int:
    """The torch thread count of each run: ``--threads`` when given; else all cores locally (torch's
    default) and ``cpus_per_run`` (at least one) for Ray tasks."""
    if threads:
        return threads
    if executor == "ray":
        return max(1, int(cpus_per_run))
    import torch

    return torch.get_num_threads()
