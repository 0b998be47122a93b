"""RunConfig: everything that determines a run's result. A run is a pure function of it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fc4dfs.benchmark.errors import UserError
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.contracts import ComponentError, budget_options, check_options, options_from_signature

if TYPE_CHECKING:
    from fc4dfs.plugins.manager import Registry


@dataclass(frozen=True)
class RunConfig:
    """The resolved configuration of one run (one protocol, components, budget, seed)."""

    protocol: str
    dataset: str
    generator: str | None = None
    decoder: str | None = None
    budget: str = "quick"
    seed: int = 0
    device: str = "cpu"
    #: torch CPU threads of the run (None: the process's setting). Like ``device`` it is an execution
    #: setting, left out of the hash and run id; at a fixed count the results are bit for bit repeatable.
    threads: int | None = None
    generator_options: dict[str, Any] = field(default_factory=dict)
    decoder_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    protocol_options: dict[str, Any] = field(default_factory=dict)
    budget_overrides: dict[str, Any] = field(default_factory=dict)
    #: a direct pipeline run in place of a generator + decoder (``--pipeline``)
    pipeline: str | None = None
    pipeline_options: dict[str, Any] = field(default_factory=dict)
    #: content hash of the evaluator file that scores CA, CA (mesh) and FID (``run --evaluator FILE``;
    #: :func:`fc4dfs.benchmark.evaluators.file_hash`); None: the default evaluator (the one shipped for
    #: the dataset version, else classifiers trained through the store). Part of the run id, so a run
    #: scored by another evaluator is another run, never a reused record carrying the old scores.
    evaluator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The config as a dict; the pipeline fields only when a pipeline is set and the evaluator only
        when one is given (so earlier configs keep the hash and run id they had)."""
        d = asdict(self)
        if not self.pipeline:
            d.pop("pipeline")
            d.pop("pipeline_options")
        if self.evaluator is None:
            d.pop("evaluator")
        return d

    @property
    def hash(self) -> str:
        """Hash of what determines the result (device and threads are left out: they should not change
        scores beyond floating-point summation order, and run ids stay the same across machines).

        Dataset paths are part of it: a finished run is only reused for the same data location.
        """
        d = self.to_dict()
        d.pop("device")
        d.pop("threads")
        return stable_hash(d)

    @property
    def run_id(self) -> str:
        parts = [self.protocol, self.dataset, _tag(self.pipeline, self.pipeline_options),
                 _tag(self.generator, self.generator_options), _tag(self.decoder, self.decoder_options),
                 self.budget, f"s{self.seed}", self.hash[:8]]
        return "_".join(p for p in parts if p)

    def describe(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def validate_options(reg: "Registry", config: RunConfig) -> dict[str, Any]:
    """Check every option of ``config`` against what its protocol, components, dataset and budget
    declare; return the protocol's options with its defaults filled in.

    Raises UserError naming the flag, the unknown option and the closest valid one, or the allowed
    range of a value out of range (e.g. ``--protocol-opt: protocol 'e2e' option length=-3 is out of
    range: it must be an integer >= 2 and <= 10000``).
    """
    protocol = reg.load("protocol", config.protocol)
    used = [kind for kind in ("generator", "decoder") if getattr(config, kind) and kind in protocol.needs]
    if config.pipeline:
        used.append("pipeline")
    classes = {kind: reg.load(kind, getattr(config, kind)) for kind in used}
    try:
        resolved = _flag("--protocol-opt", lambda: protocol.resolve_options(config.protocol_options))
        for kind, cls in classes.items():
            opts = getattr(config, f"{kind}_options")
            _flag(OPTION_FLAGS[kind], lambda: check_options(f"{kind} {cls.name!r}", opts, cls.declared_options()))
            _flag(OPTION_FLAGS[kind], lambda: cls(**opts))  # the component's own checks across its options
        factory = reg.load("dataset", config.dataset)
        _flag("--dataset-opt", lambda: check_options(f"dataset {config.dataset!r}", config.dataset_options,
                                                     options_from_signature(factory)))
        tables = [cls.budgets for cls in classes.values()]
        _flag("--budget-opt", lambda: check_options(
            f"budget {config.budget!r} of {' and '.join(f'{k} {getattr(config, k)!r}' for k in used) or 'no component'}",
            config.budget_overrides, budget_options(tables)))
    except ComponentError as e:
        raise UserError(str(e)) from None
    return resolved


#: the command-line flag that sets each component kind's options
OPTION_FLAGS = {"generator": "--gen-opt", "decoder": "--dec-opt", "pipeline": "--pipeline-opt"}


def _flag(flag: str, check: Any) -> Any:
    try:
        return check()
    except ComponentError as e:
        raise ComponentError(f"{flag}: {e}") from None


def _tag(name: str | None, options: dict[str, Any]) -> str:
    if not name:
        return ""
    return name.replace("+", "p") + (f"-{stable_hash(options, 6)}" if options else "")


def parse_options(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """Parse ``key=value`` pairs; values are JSON where they parse (numbers, true/false, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"{what} expects key=value, got {pair!r}")
        key, _, raw = pair.partition("=")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = {"True": True, "False": False}.get(raw, raw)
        out[key.strip()] = value
    return out
