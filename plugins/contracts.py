"""The contracts every component implements, built-in or external.

A *component* is a generator, decoder, pipeline, metric or protocol class. Generators, decoders and
pipelines are trainable and persist through :mod:`fc4dfs.plugins.checkpoint` (safetensors + JSON metadata;
loading never executes code from the file).
"""
from __future__ import annotations

import difflib
import inspect
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence as Seq

import numpy as np

from fc4dfs.datasets.base import Dataset, Topology, TopologyMismatchError
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.errors import CheckpointMismatchError, ComponentError

if TYPE_CHECKING:
    import torch

BUDGET_NAMES = ("smoke", "quick", "paper")


# --------------------------------------------------------------------------- options
_TYPE_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list"}


@dataclass(frozen=True)
class Option:
    """One accepted option of a component, protocol, dataset or budget.

    ``type`` is ``bool``, ``int``, ``float``, ``str``, ``list`` or None (anything); ``low``/``high``
    bound numbers (and each entry of a list of numbers), ``low_open`` makes ``low`` exclusive;
    ``item_type`` is the type of a list's entries; ``nullable`` allows None (JSON ``null``).
    """

    name: str
    type: type | None = None
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    item_type: type | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = _TYPE_NAMES.get(self.item_type if self.type is list else self.type, "a value")
        if self.type is list:
            what = f"a list of {what.removeprefix('an ').removeprefix('a ')}s"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"<= {self.high:g}")
        return what + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: Any, owner: str) -> Any:
        """``value`` converted to the option's type; ComponentError naming the allowed range."""
        if value is None and (self.nullable or self.default is None):
            return None
        bad = ComponentError(f"{owner} option {self.name}={_show(value)} is out of range: it must be "
                             f"{self.describe_range()}")
        if self.type is list:
            if not isinstance(value, (list, tuple)):
                raise bad
            return [self._scalar(v, self.item_type, bad) for v in value]
        out = self._scalar(value, self.type, bad)
        if self.choices is not None and out not in self.choices:
            raise bad
        return out

    def _scalar(self, value: Any, typ: type | None, bad: ComponentError) -> Any:
        if typ is None:
            return value
        if typ is bool:
            if not isinstance(value, bool):
                raise bad
            return value
        if typ is str:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise bad
            return str(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise bad
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise bad
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


#: an option set; None means "accepts any option" (a factory taking ``**kwargs``)
Options = Mapping[str, Option]


def check_options(owner: str, given: Mapping[str, Any], declared: Options | None) -> dict[str, Any]:
    """Validate ``given`` against ``declared``; returns the converted values (defaults not added).

    Raises ComponentError for an unknown name (naming the closest declared one: "did you mean
    'length'?") or a value outside the option's type/range (naming the allowed range).
    """
    if declared is None:
        return dict(given)
    out: dict[str, Any] = {}
    for key, value in given.items():
        opt = declared.get(key)
        if opt is None:
            close = difflib.get_close_matches(key, list(declared), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(declared)) or "none"
            raise ComponentError(f"{owner} has no option {key!r}{hint} (its options: {known})")
        out[key] = opt.check(value, owner)
    return out


def options_from_defaults(defaults: Mapping[str, Any], help: Mapping[str, str] | None = None) -> dict[str, Option]:
    """An option set derived from a dict of defaults: each option takes its default's type (or None,
    which components use for "off")."""
    return {k: Option(k, _type_of(v), v, (help or {}).get(k, ""), item_type=_item_type(v), nullable=True)
            for k, v in defaults.items()}


def options_from_signature(fn: Callable[..., Any]) -> dict[str, Option] | None:
    """An option set derived from a factory's keyword parameters.

    A parameter annotated ``int``/``float``/``str``/``bool`` takes that type, any other annotation
    (e.g. ``Any``, because strings from the command line are parsed by the factory) accepts any value.
    ``**kwargs`` beside named parameters is taken to exist only to report unknown names; a factory
    with nothing but ``**kwargs`` accepts any option (None).
    """
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY)]
    named = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if not named and params:
        return None
    simple = {"int": int, "float": float, "str": str, "bool": bool, int: int, float: float, str: str, bool: bool}
    out = {}
    for p in named:
        default = None if p.default is inspect.Parameter.empty else p.default
        if p.annotation is inspect.Parameter.empty:
            typ = _type_of(default)
        else:
            typ = simple.get(p.annotation) if isinstance(p.annotation, (str, type)) else None
        out[p.name] = Option(p.name, typ, default, item_type=_item_type(default) if typ is list else None)
    return out


def budget_options(tables: Seq[Mapping[str, Mapping[str, Any]]]) -> dict[str, Option]:
    """The ``--budget-opt`` overrides that the given components' budget tables accept.

    Each key of any budget of any table; its type is the values' type and its range follows the
    values' sign across budgets (all > 0: must be > 0; all >= 0: must be >= 0).
    """
    values: dict[str, list[Any]] = {}
    for table in tables:
        for budget in table.values():
            for k, v in budget.items():
                values.setdefault(k, []).append(v)
    out = {}
    for k, vs in values.items():
        typ = _type_of(vs[0])
        if typ is int and any(isinstance(v, float) for v in vs):
            typ = float
        numeric = typ in (int, float) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs)
        low = 0.0 if numeric and all(v >= 0 for v in vs) else None
        out[k] = Option(k, typ, vs[0], low=low, low_open=numeric and all(v > 0 for v in vs),
                        item_type=_item_type(vs[0]))
    return out


def _type_of(v: Any) -> type | None:
    if v is None:
        return None
    for t in (bool, int, float, str):
        if isinstance(v, t):
            return t
    if isinstance(v, (list, tuple)):
        return list
    return None


def _item_type(v: Any) -> type | None:
    if isinstance(v, (list, tuple)) and v:
        t = _type_of(v[0])
        if t is int and any(isinstance(x, float) for x in v):
            return float
        return t if t is not list else None
    return None


@dataclass(frozen=True)
class Budget:
    """A named training budget: ``smoke`` (seconds), ``quick`` (CPU minutes), ``paper``.

    ``overrides`` replaces individual hyper-parameters of a component's budget table.
    """

    name: str = "quick"
    overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in BUDGET_NAMES:
            raise ComponentError(f"unknown budget {self.name!r}; choose one of {', '.join(BUDGET_NAMES)}")

    def pick(self, table: dict[str, dict]) -> dict:
        """The hyper-parameters for this budget from a component's ``{budget: {...}}`` table."""
        return {**table[self.name], **self.overrides}


class Component(ABC):
    """Base of trainable components (generators, decoders and pipelines)."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    #: default options; ``__init__`` accepts exactly these keys
    defaults: ClassVar[dict[str, Any]] = {}
    #: per-budget hyper-parameter tables: {"smoke": {...}, "quick": {...}, "paper": {...}}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: options the conformance kit's registry-wide checks use to stay fast (e.g. fewer sampling
    #: steps); they must not change what the contract checks
    conformance_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        options = check_options(f"{self.kind} {self.name!r}", options, self.declared_options())
        self.options: dict[str, Any] = {**self.defaults, **options}
        self.topology: Topology | None = None
        self.labels: list[str] | None = None
        self.train_report: dict[str, Any] = {}

    @classmethod
    def declared_options(cls) -> dict[str, Option]:
        """The accepted options, derived from :attr:`defaults` (each takes its default's type)."""
        return options_from_defaults(cls.defaults)

    # -- identity ---------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "version": self.version, "options": self.options}

    @property
    def config_hash(self) -> str:
        return stable_hash(self.config)

    @property
    def is_fitted(self) -> bool:
        return self.topology is not None

    def _require_fitted(self) -> Topology:
        if self.topology is None:
            raise ComponentError(f"{self.kind} {self.name!r} is not trained: call fit() or load() first")
        return self.topology

    def label_ids(self, labels: Seq[str]) -> np.ndarray:
        """Map label names to indices of the labels seen in training; unknown ones are an error."""
        assert self.labels is not None
        out = []
        for lab in labels:
            if lab not in self.labels:
                raise ComponentError(f"label {lab!r} unknown to {self.name!r}; it was trained on: "
                                     f"{', '.join(self.labels)}")
            out.append(self.labels.index(lab))
        return np.asarray(out, dtype=np.int64)

    # -- training ---------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """Train on ``data`` (already restricted to training identities).

        With ``workdir`` the component checkpoints its training state there and resumes from it.
        Returns a small JSON-able report (losses, epochs, seconds). Must set ``self.topology`` and
        ``self.labels``.
        """

    # -- persistence ------------------------------------------------------------------------
    @abstractmethod
    def state_tensors(self) -> dict[str, "torch.Tensor"]:
        """All learned tensors (contiguous, CPU)."""

    def state_meta(self) -> dict[str, Any]:
        """JSON-able non-tensor state needed to rebuild the model (shapes, vocabularies)."""
        return {}

    @abstractmethod
    def restore(self, tensors: dict[str, "torch.Tensor"], meta: dict[str, Any], device: str = "cpu") -> None:
        """Rebuild the trained model from :meth:`state_tensors` / :meth:`state_meta` output."""

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (atomic; safetensors with the metadata in its header)."""
        from fc4dfs.plugins.checkpoint import save_checkpoint

        topo = self._require_fitted()
        header = {**self.config, "config_hash": self.config_hash, "topology": topo.hash,
                  "num_vertices": topo.num_vertices, "num_landmarks": topo.num_landmarks,
                  "labels": self.labels, "meta": self.state_meta(), "train_report": self.train_report}
        return save_checkpoint(path, self.state_tensors(), header)

    @classmethod
    def load(cls, path: str | Path, topology: Topology, device: str = "cpu",
             expect_config_hash: str | None = None) -> "Component":
        """Load a checkpoint written by :meth:`save`; refuse one made for something else."""
        from fc4dfs.plugins.checkpoint import read_checkpoint

        tensors, header = read_checkpoint(path)
        problems = []
        if header.get("kind") != cls.kind or header.get("name") != cls.name:
            problems.append(f"it holds {header.get('kind')} {header.get('name')!r}, not {cls.kind} {cls.name!r}")
        if header.get("version") != cls.version:
            problems.append(f"component version {header.get('version')} != installed {cls.version}")
        if header.get("topology") != topology.hash:
            problems.append(f"topology {header.get('topology')} != {topology.hash} "
                            f"({header.get('num_vertices')} vs {topology.num_vertices} vertices)")
        if expect_config_hash is not None and header.get("config_hash") != expect_config_hash:
            problems.append(f"config {header.get('config_hash')} != expected {expect_config_hash}")
        if problems:
            raise CheckpointMismatchError(f"refusing checkpoint {path}: " + "; ".join(problems))
        obj = cls(**header.get("options", {}))
        obj.topology = topology
        obj.labels = header.get("labels")
        obj.train_report = header.get("train_report", {})
        obj.restore(tensors, header.get("meta", {}), device=device)
        return obj


class Generator(Component):
    """Neutral landmarks + label + length/fps -> landmark sequence.

    ``controls`` names what the generator *can* be configured to honour beyond label and length
    (a subset of :data:`CONTROLS`); :meth:`active_controls` what it honours with its options. A
    generator with active controls accepts ``intensity=`` and ``timing=`` keyword arguments in
    :meth:`generate`, with the meaning and checks of :meth:`Pipeline.synthesize`
    (:meth:`check_controls`); callers pass them only when active.
    """

    kind: ClassVar[str] = "generator"
    #: True when samples for one condition differ between seeds
    stochastic: ClassVar[bool] = False
    #: the frame rate assumed when ``generate`` gets none
    default_fps: ClassVar[float] = 30.0
    #: the subset of :data:`CONTROLS` some option setting of this generator honours
    controls: ClassVar[frozenset[str]] = frozenset()

    def active_controls(self) -> frozenset[str]:
        """The controls this instance honours with its options (default: all of :attr:`controls`)."""
        return frozenset(self.controls)

    def check_controls(self, batch: int, intensity: float | Seq[float] | None = None,
                       timing: Mapping[str, float] | Seq[Mapping[str, float]] | None = None,
                       ) -> tuple[list[float] | None, list[dict[str, float]] | None]:
        """Per batch item intensity and timing, checked as :func:`check_controls` does; refuses a control
        that is not active, naming the option that switches it on when the class has it."""
        return check_controls(self, self.active_controls(), batch, intensity, timing)

    @abstractmethod
    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """Landmark sequences ``[B, T, L, 3]`` (float32, mm); frame 0 is the given neutral set.

        ``neutral_landmarks`` is ``[B, L, 3]``; ``labels`` has B names; ``length`` is T >= 2.
        Generators with :meth:`active_controls` also take ``intensity`` and ``timing`` (see the class).
        """

    def fill(self, known: np.ndarray, mask: np.ndarray, labels: Seq[str] | None = None,
             seed: int | None = None, harmonize_iters: int = 1) -> np.ndarray:
        """Expression filling (optional capability): complete a partial landmark sequence.

        ``known`` is ``[B, T, L, 3]`` mm, ``mask`` ``[B, T]`` bool (True = known frame); returns
        ``[B, T, L, 3]`` with the known frames unchanged. ``can_fill`` says whether a generator has it.
        """
        raise ComponentError(f"generator {self.name!r} cannot fill a partial sequence")

    @classmethod
    def can_fill(cls) -> bool:
        """True when the generator overrides :meth:`fill`."""
        return cls.fill is not Generator.fill

    def generate_text(self, neutral_landmarks: np.ndarray, texts: Seq[str], length: int,
                      fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """Text control (optional capability, Zou et al. Alg. 2): like :meth:`generate` with B free-form
        descriptions instead of labels. ``can_generate_text`` says whether a generator has it."""
        raise ComponentError(f"generator {self.name!r} cannot be conditioned on text")

    @classmethod
    def can_generate_text(cls) -> bool:
        """True when the generator overrides :meth:`generate_text`."""
        return cls.generate_text is not Generator.generate_text

    def check_generate_inputs(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int) -> None:
        """Shared argument validation with errors that name the argument."""
        topo = self._require_fitted()
        if not isinstance(neutral_landmarks, np.ndarray) or neutral_landmarks.ndim != 3:
            raise ComponentError(f"neutral_landmarks must be a [B, L, 3] array, got "
                                 f"{getattr(neutral_landmarks, 'shape', type(neutral_landmarks))}")
        topo.check_landmarks(neutral_landmarks, "neutral_landmarks")
        _check_finite(neutral_landmarks, "neutral_landmarks")
        if len(labels) != neutral_landmarks.shape[0]:
            raise ComponentError(f"labels has {len(labels)} entries but neutral_landmarks has batch "
                                 f"{neutral_landmarks.shape[0]}")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
            raise ComponentError(f"length must be an integer number of frames, got {length!r}")
        if int(length) < 2:
            raise ComponentError(f"length must be >= 2 frames, got {length}")


class Decoder(Component):
    """Neutral mesh + neutral landmarks + landmark sequence -> mesh sequence."""

    kind: ClassVar[str] = "decoder"

    @abstractmethod
    def decode(self, neutral_mesh: np.ndarray, neutral_landmarks: np.ndarray,
               landmarks: np.ndarray) -> np.ndarray:
        """Mesh sequences ``[B, T, V, 3]`` from ``[B, V, 3]``, ``[B, L, 3]`` and ``[B, T, L, 3]``."""

    def check_decode_inputs(self, neutral_mesh: np.ndarray, neutral_landmarks: np.ndarray,
                            landmarks: np.ndarray) -> None:
        topo = self._require_fitted()
        for arr, what, nd in ((neutral_mesh, "neutral_mesh", 3), (neutral_landmarks, "neutral_landmarks", 3),
                              (landmarks, "landmarks", 4)):
            if not isinstance(arr, np.ndarray) or arr.ndim != nd:
                raise ComponentError(f"{what} must be a {nd}-d array, got {getattr(arr, 'shape', type(arr))}")
        topo.check_vertices(neutral_mesh, "neutral_mesh")
        topo.check_landmarks(neutral_landmarks, "neutral_landmarks")
        topo.check_landmarks(landmarks, "landmarks")
        for arr, what in ((neutral_mesh, "neutral_mesh"), (neutral_landmarks, "neutral_landmarks"),
                          (landmarks, "landmarks")):
            _check_finite(arr, what)
        b = neutral_mesh.shape[0]
        if neutral_landmarks.shape[0] != b or landmarks.shape[0] != b:
            raise ComponentError(f"batch sizes differ: neutral_mesh {b}, neutral_landmarks "
                                 f"{neutral_landmarks.shape[0]}, landmarks {landmarks.shape[0]}")


def _check_finite(arr: np.ndarray, what: str) -> None:
    """Refuse NaN or Inf in an input array, naming the argument and the first bad batch entry."""
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ComponentError(f"{what} contains NaN or Inf ({int(bad.sum())} value(s), first in batch entry "
                             f"{int(np.argwhere(bad)[0][0])})")


#: what a pipeline may let its caller control besides label and length (``Pipeline.controls``)
CONTROLS = ("intensity", "timing")
#: the intensity range a pipeline accepts: 0 = neutral, 1 = the dataset's typical apex
INTENSITY_RANGE = (0.0, 1.5)


class Pipeline(Component):
    """Direct pipeline: neutral mesh + label + length/fps [+ intensity, timing] -> mesh sequence.

    Unlike a generator -> decoder chain it produces meshes without a landmark stage (e.g. Potamias
    et al. 2020); protocols take its landmarks from its meshes through the topology's embedding, so
    landmark metrics are computed the same way as for a chain. ``controls`` names what it can honour
    beyond label and length: ``"intensity"`` (0 = neutral, 1 = the dataset's typical apex, up to 1.5)
    and ``"timing"`` (relative onset/apex/offset, see :mod:`fc4dfs.datasets.phases`).
    """

    kind: ClassVar[str] = "pipeline"
    #: True when samples for one condition differ between seeds
    stochastic: ClassVar[bool] = False
    #: the frame rate assumed when ``synthesize`` gets none
    default_fps: ClassVar[float] = 30.0
    #: the subset of :data:`CONTROLS` this pipeline honours
    controls: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def synthesize(self, neutral_mesh: np.ndarray, labels: Seq[str], length: int, fps: float | None = None,
                   seed: int | None = None, intensity: float | Seq[float] | None = None,
                   timing: Mapping[str, float] | Seq[Mapping[str, float]] | None = None) -> np.ndarray:
        """Mesh sequences ``[B, T, V, 3]`` (float32, mm); frame 0 is the given neutral.

        ``neutral_mesh`` is ``[B, V, 3]``, ``labels`` B names, ``length`` T >= 2. ``intensity`` (one
        value or B values in [0, 1.5]) and ``timing`` (one ``{"onset", "apex", "offset"[, "rest"]}``
        dict of relative times or B of them) are honoured by pipelines whose :attr:`controls` name
        them; the others raise ComponentError. None means the label's typical value.
        """

    def interpolate(self, neutral_mesh: np.ndarray, label_a: str, label_b: str, alphas: Seq[float],
                    length: int = 30) -> np.ndarray:
        """Latent interpolation (optional capability, Potamias et al. §5.5): meshes ``[1 + K, V, 3]``
        (mm) on ``neutral_mesh [V, 3]``: the neutral, then for each of the K ``alphas`` the mesh decoded
        from ``(1 - alpha) z_A + alpha z_B``, ``z`` being the latent codes of the two labels' apexes
        (encoded from a signal of ``length`` frames). ``can_interpolate`` says whether a pipeline has it."""
        raise ComponentError(f"pipeline {self.name!r} has no latent expression code to interpolate")

    @classmethod
    def can_interpolate(cls) -> bool:
        """True when the pipeline overrides :meth:`interpolate`."""
        return cls.interpolate is not Pipeline.interpolate

    def check_synthesize_inputs(self, neutral_mesh: np.ndarray, labels: Seq[str], length: int,
                                intensity: float | Seq[float] | None = None,
                                timing: Mapping[str, float] | Seq[Mapping[str, float]] | None = None,
                                ) -> tuple[list[float] | None, list[dict[str, float]] | None]:
        """Shared validation (errors name the argument); returns intensity and timing per batch item."""
        topo = self._require_fitted()
        if not isinstance(neutral_mesh, np.ndarray) or neutral_mesh.ndim != 3:
            raise ComponentError(f"neutral_mesh must be a [B, V, 3] array, got "
                                 f"{getattr(neutral_mesh, 'shape', type(neutral_mesh))}")
        topo.check_vertices(neutral_mesh, "neutral_mesh")
        _check_finite(neutral_mesh, "neutral_mesh")
        b = neutral_mesh.shape[0]
        if len(labels) != b:
            raise ComponentError(f"labels has {len(labels)} entries but neutral_mesh has batch {b}")
        if int(length) < 2:
            raise ComponentError(f"length must be >= 2 frames, got {length}")
        return check_controls(self, self.controls, b, intensity, timing, "neutral_mesh")


def check_controls(component: Component, active: frozenset[str], batch: int,
                   intensity: float | Seq[float] | None = None,
                   timing: Mapping[str, float] | Seq[Mapping[str, float]] | None = None,
                   batch_of: str = "neutral_landmarks",
                   ) -> tuple[list[float] | None, list[dict[str, float]] | None]:
    """Intensity (one value or ``batch`` values in :data:`INTENSITY_RANGE`) and timing (one
    ``{"onset", "apex", "offset"[, "rest"]}`` dict of relative times or ``batch`` of them) per batch
    item, or None where not given. ComponentError naming the argument for a bad value, and for a
    control not in ``active`` (naming the option that switches it on, when the component declares one
    of the control's name)."""
    from fc4dfs.datasets.phases import check_timing

    for what, given in (("intensity", intensity), ("timing", timing)):
        if given is not None and what not in active:
            hint = (f" with these options (switch it on with option {what}=true)"
                    if what in getattr(component, "controls", ()) and what in component.declared_options() else "")
            raise ComponentError(f"{component.kind} {component.name!r} cannot control {what}{hint}")
    levels = None
    if intensity is not None:
        vals = [intensity] * batch if np.isscalar(intensity) else list(intensity)  # type: ignore[arg-type]
        if len(vals) != batch:
            raise ComponentError(f"intensity has {len(vals)} values but {batch_of} has batch {batch}")
        lo, hi = INTENSITY_RANGE
        bad = [v for v in vals if not (isinstance(v, (int, float, np.floating)) and lo <= float(v) <= hi)]
        if bad:
            raise ComponentError(f"intensity must be in [{lo:g}, {hi:g}] (0 = neutral, 1 = typical apex), got {bad[0]}")
        levels = [float(v) for v in vals]
    timings = None
    if timing is not None:
        many = [timing] * batch if isinstance(timing, Mapping) else list(timing)
        if len(many) != batch:
            raise ComponentError(f"timing has {len(many)} entries but {batch_of} has batch {batch}")
        try:
            timings = [check_timing(t) for t in many]
        except ValueError as e:
            raise ComponentError(str(e)) from None
    return levels, timings


# --------------------------------------------------------------------------- evaluation
@dataclass
class EvalItem:
    """One evaluated test sequence: ground truth and what a pipeline predicted for it."""

    identity: str
    label: str
    fps: float
    gt_landmarks: np.ndarray  # [T, L, 3]
    pred_landmarks: np.ndarray | None = None  # [T, L, 3]
    gt_mesh: np.ndarray | None = None  # [T, V, 3]
    pred_mesh: np.ndarray | None = None  # [T, V, 3]
    samples: np.ndarray | None = None  # [S, T, L, 3] extra samples of a stochastic generator
    #: the timing a pipeline was asked for ({"onset", "apex", "offset"[, "rest"]}, relative time)
    requested_timing: dict[str, float] | None = None
    #: an intensity sweep: {"levels": [K] requested intensities, "meshes": [K, T, V, 3] generated}
    intensity_sweep: dict[str, Any] | None = None


@dataclass
class EvalContext:
    """What metrics may need beyond the items: topology, labels and trained classifiers."""

    topology: Topology
    labels: list[str]
    seed: int = 0
    #: returns a trained classifier for "landmarks" or "mesh" sequences (cached per dataset)
    classifier: Callable[[str], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricValue:
    """A metric's score of a set of items.

    ``value`` is the metric's one definition (for the errors: the mean over every point of every
    frame of every item) and ``std`` the standard deviation of the same population ``value`` is
    the mean of (None where there is none). ``per_item`` holds one value per EvalItem (the same
    definition applied to that item alone), for paired comparisons.
    """

    value: float
    std: float | None = None
    per_item: np.ndarray | None = None  # one value per EvalItem, for paired comparisons
    details: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """A named score with unit and direction.

    A protocol scores its items with every registered metric whose :attr:`requires` the items and
    the evaluation context satisfy, so a metric registered by a plugin appears in every protocol
    that produces that kind of output. ``reference`` metrics are also scored on the ground truth
    itself (a protocol's ``gt`` row, e.g. the classifier's accuracy on real sequences).

    Scoring streams: a protocol hands the items over in chunks, each chunk to :meth:`summarize`
    (one small summary per item: errors, classifier outputs, statistics), drops the chunk's meshes,
    and calls :meth:`finalize` once on all the summaries in item order
    (:class:`fc4dfs.benchmark.protocols.common.Scorer`); :meth:`compute` is the same on one chunk.
    A metric defines :meth:`summarize` and :meth:`finalize`, so that a run's memory does not grow
    with its number of test sequences, or only :meth:`compute`, and then keeps every item it scores
    (meshes included) until the end.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    direction: ClassVar[str] = "lower"  # "lower" or "higher" is better
    #: what an EvalItem must carry: any of "pred_landmarks", "pred_mesh", "samples", "classifier"
    requires: ClassVar[frozenset[str]] = frozenset()
    #: also scored on the ground truth as a reference row
    reference: ClassVar[bool] = False

    def applicable(self, items: Seq[EvalItem], ctx: EvalContext) -> bool:
        """Whether the items carry what this metric needs."""
        for need in self.requires:
            if need == "classifier":
                if ctx.classifier is None:
                    return False
            elif not items or any(getattr(it, need) is None for it in items):
                return False
        return True

    def summarize(self, items: Seq[EvalItem], ctx: EvalContext) -> list[Any]:
        """One summary per item of ``items`` (a chunk of the items being scored, in order): what
        :meth:`finalize` needs of that item. The default keeps the items themselves (a metric that
        defines only :meth:`compute`). Raises ComponentError for an item the metric cannot score."""
        return list(items)

    def finalize(self, summaries: Seq[Any], ctx: EvalContext) -> MetricValue:
        """The score of the items whose :meth:`summarize` results, concatenated over the chunks in item
        order, are ``summaries``. The default calls :meth:`compute` on them (a metric that defines only
        compute). Raises ComponentError when the items cannot be scored together (e.g. none)."""
        if type(self).compute is Metric.compute:
            raise NotImplementedError(f"metric {self.name!r} defines neither compute nor summarize and finalize")
        return self.compute(summaries, ctx)

    def compute(self, items: Seq[EvalItem], ctx: EvalContext) -> MetricValue:
        """Score the items: ``finalize(summarize(items))``, all of them as one chunk."""
        return self.finalize(self.summarize(items, ctx), ctx)

    def pool(self, parts: Seq[MetricValue]) -> MetricValue | None:
        """The score of the union of disjoint item sets from their scores (e.g. over CV folds).

        None (the default) when the metric cannot be pooled from its parts; then a pooled row
        leaves it out.
        """
        return None


# --------------------------------------------------------------------------- protocols
@dataclass
class ResultRow:
    """One result row of a protocol run (one line of a paper table).

    ``generator``/``decoder`` None mean the run's components; a ``reference`` row scores the
    ground truth itself (shown as generator and decoder ``gt``). ``fold`` is the CV fold of a
    per-fold row and None otherwise (a row over all test items: a pooled or single-split row).
    ``metrics`` maps each metric name to its value and ``<name>_std`` to its std (see
    :class:`MetricValue`); ``per_item`` maps each metric name to ``[(item key, value), ...]``.
    """

    setting: str
    n_items: int
    metrics: dict[str, float]
    generator: str | None = None
    decoder: str | None = None
    fold: int | None = None
    length: int | None = None
    reference: bool = False
    per_item: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    REFERENCE_NAME: ClassVar[str] = "gt"

    @property
    def key(self) -> str:
        """The row's key in ``per_item.json``: its setting, ``gt`` for a reference row, and
        ``<setting>/<generator>`` for a row of another method than the run's (a baseline row, e.g.
        filling's ``ffm/mean-imputation``)."""
        if self.reference:
            return self.REFERENCE_NAME
        return f"{self.setting}/{self.generator}" if self.generator else self.setting

    @property
    def pooled(self) -> bool:
        """A row over all test items of the run (not one fold, not the reference)."""
        return self.fold is None and not self.reference

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in ``record.json`` and ``metrics.json`` (per-item values omitted)."""
        d = {"setting": self.setting, "n_items": self.n_items, "metrics": self.metrics, "fold": self.fold,
             "length": self.length, "reference": self.reference, "train_seconds": self.train_seconds,
             "eval_seconds": self.eval_seconds, "details": self.details}
        if self.reference:
            d["generator"] = d["decoder"] = self.REFERENCE_NAME
        else:
            d.update({k: v for k, v in (("generator", self.generator), ("decoder", self.decoder)) if v})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ResultRow":
        """Inverse of :meth:`to_dict` (also reads records written before the schema was typed)."""
        fold, length, setting = d.get("fold"), d.get("length"), str(d.get("setting", ""))
        if length is None and setting.startswith("length=") and setting[7:].isdigit():
            length = int(setting[7:])
        reference = bool(d.get("reference", d.get("generator") == cls.REFERENCE_NAME))
        return cls(setting=setting, n_items=int(d.get("n_items") or 0),
                   metrics=dict(d.get("metrics", {})),
                   generator=None if reference else d.get("generator"),
                   decoder=None if reference else d.get("decoder"),
                   fold=fold if isinstance(fold, int) else None, length=length, reference=reference,
                   train_seconds=float(d.get("train_seconds", 0.0)),
                   eval_seconds=float(d.get("eval_seconds", 0.0)), details=dict(d.get("details", {})))


class Protocol(ABC):
    """An evaluation protocol (one of the papers' tables).

    ``options`` declares every accepted ``--protocol-opt`` (type, default, range); a run refuses
    any other before doing work. ``primary_metric`` and ``direction`` say how the leaderboard
    ranks its rows.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    #: which components the protocol uses: subset of {"generator", "decoder"}
    needs: ClassVar[frozenset[str]] = frozenset()
    #: the metric the leaderboard ranks by, and whether lower or higher is better
    primary_metric: ClassVar[str] = ""
    direction: ClassVar[str] = "lower"
    #: the accepted protocol options
    options: ClassVar[dict[str, Option]] = {}
    #: True when the protocol can run a direct :class:`Pipeline` (``--pipeline``) in place of ``needs``
    runs_pipelines: ClassVar[bool] = False

    @classmethod
    def resolve_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with the validated ``given`` options; ComponentError for bad ones."""
        checked = check_options(f"protocol {cls.name!r}", given, cls.options)
        return {**{k: o.default for k, o in cls.options.items()}, **checked}

    @abstractmethod
    def run(self, ctx: Any) -> list[ResultRow]:
        """Run under a :class:`fc4dfs.benchmark.runner.RunContext`; return result rows."""

    def planned_fits(self, ctx: Any) -> list[tuple[str, list[str]]]:
        """The ``(kind, training identities)`` of each component :meth:`run` will train with ``ctx.fit``
        on ``ctx.make(kind)``, known before running, so that an executor can train a component that
        several runs share once, ahead of them. Default: none declared (each run trains its own)."""
        return []
