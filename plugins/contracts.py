"""The contracts every component implements, built-in or external.

A *component* is a generator, decoder, metric or protocol class. Generators and decoders are
trainable and persist through :mod:`fc4dfs.plugins.checkpoint` (safetensors + JSON metadata;
loading never executes code from the file).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence as Seq

import numpy as np

from fc4dfs.datasets.base import Dataset, Topology, TopologyMismatchError
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.errors import CheckpointMismatchError, ComponentError

if TYPE_CHECKING:
    import torch

BUDGET_NAMES = ("smoke", "quick", "paper")


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
    """Base of trainable components (generators and decoders)."""

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
        unknown = set(options) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise ComponentError(f"{self.kind} {self.name!r} has no option(s) {sorted(unknown)}; "
                                 f"its options are: {known}")
        self.options: dict[str, Any] = {**self.defaults, **options}
        self.topology: Topology | None = None
        self.labels: list[str] | None = None
        self.train_report: dict[str, Any] = {}

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
    """Neutral landmarks + label + length/fps -> landmark sequence."""

    kind: ClassVar[str] = "generator"
    #: True when samples for one condition differ between seeds
    stochastic: ClassVar[bool] = False
    #: the frame rate assumed when ``generate`` gets none
    default_fps: ClassVar[float] = 30.0

    @abstractmethod
    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None) -> np.ndarray:
        """Landmark sequences ``[B, T, L, 3]`` (float32, mm); frame 0 is the given neutral set.

        ``neutral_landmarks`` is ``[B, L, 3]``; ``labels`` has B names; ``length`` is T >= 2.
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

    def check_generate_inputs(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int) -> None:
        """Shared argument validation with errors that name the argument."""
        topo = self._require_fitted()
        if not isinstance(neutral_landmarks, np.ndarray) or neutral_landmarks.ndim != 3:
            raise ComponentError(f"neutral_landmarks must be a [B, L, 3] array, got "
                                 f"{getattr(neutral_landmarks, 'shape', type(neutral_landmarks))}")
        topo.check_landmarks(neutral_landmarks, "neutral_landmarks")
        if len(labels) != neutral_landmarks.shape[0]:
            raise ComponentError(f"labels has {len(labels)} entries but neutral_landmarks has batch "
                                 f"{neutral_landmarks.shape[0]}")
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
        b = neutral_mesh.shape[0]
        if neutral_landmarks.shape[0] != b or landmarks.shape[0] != b:
            raise ComponentError(f"batch sizes differ: neutral_mesh {b}, neutral_landmarks "
                                 f"{neutral_landmarks.shape[0]}, landmarks {landmarks.shape[0]}")


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
    value: float
    std: float | None = None
    per_item: np.ndarray | None = None  # one value per EvalItem, for paired comparisons
    details: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """A named score with unit and direction."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    direction: ClassVar[str] = "lower"  # "lower" or "higher" is better
    #: what an EvalItem must carry: any of "pred_landmarks", "pred_mesh", "samples", "classifier"
    requires: ClassVar[frozenset[str]] = frozenset()

    def applicable(self, items: Seq[EvalItem], ctx: EvalContext) -> bool:
        """Whether the items carry what this metric needs."""
        for need in self.requires:
            if need == "classifier":
                if ctx.classifier is None:
                    return False
            elif not items or any(getattr(it, need) is None for it in items):
                return False
        return True

    @abstractmethod
    def compute(self, items: Seq[EvalItem], ctx: EvalContext) -> MetricValue:
        """Score the items."""


class Protocol(ABC):
    """An evaluation protocol (one of the papers' tables)."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    #: which components the protocol uses: subset of {"generator", "decoder"}
    needs: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def run(self, ctx: Any) -> list[dict[str, Any]]:
        """Run under a :class:`fc4dfs.benchmark.runner.RunContext`; return result rows."""


def describe(obj: Any) -> str:
    return json.dumps(getattr(obj, "config", {}), sort_keys=True)
