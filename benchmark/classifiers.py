"""Expression classifiers used by the ``ca``, ``ca_mesh`` and ``fid`` metrics, and their cache.

Two classifiers, both trained on the real training sequences of a dataset:

* :class:`LandmarkClassifier` — one bidirectional LSTM layer over the landmark displacement
  sequence (``lm_t - lm_0``) followed by one linear layer (the independent classifier of Zou
  et al. §5.1 / Motion3DGAN). Its features (for the Fréchet distance) are the output of that
  linear layer, as in Zou et al.
* :class:`MeshClassifier` — Potamias et al. §5.3: each frame's mesh displacement is encoded by
  a PCA basis (64 components) of the training displacements, then classified by a sequence
  model (an LSTM over the codes) and three fully connected layers.

Both accept sequences of any length (packed LSTM inputs). At the quick and paper budgets every
training sequence is resampled to a random length within ±30 % each epoch (``time_jitter``), so
the classifiers judge the expression rather than the length — the generators are scored at
lengths (20/25/30 frames) that differ from the real sequences'. :class:`ClassifierBank` trains each
classifier once per (dataset fingerprint, training identities, classifier version, seed, budget with
its overrides) through the component store (:func:`fc4dfs.zoo.store.train_or_load`) and records
its held-out accuracy on the real test sequences; use it as ``EvalContext(classifier=bank.get)``.
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence as Seq

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from fc4dfs.benchmark.stats import classification_report
from fc4dfs.datasets.base import Dataset, Sequence, resample_frames
from fc4dfs.datasets.storage import release_mapped, stable_hash
from fc4dfs.plugins.contracts import Budget, Component
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.training import TrainLoop, seed_everything

SequenceLike = Any  # a Sequence, or an array [T, L, 3] (landmarks) / [T, V, 3] (mesh)


class _Arrays(Seq[np.ndarray]):
    """Arrays read when indexed (``loaders[i]()``), so that only the one in use is held in memory."""

    def __init__(self, loaders: list[Callable[[], np.ndarray]]) -> None:
        self.loaders = loaders

    def __len__(self) -> int:
        return len(self.loaders)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.loaders[k]() for k in range(*i.indices(len(self)))]
        return self.loaders[i]()


class _SequenceNet(nn.Module):
    """(optionally bidirectional) LSTM over per-frame inputs, then an MLP head on its final states."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int, bidirectional: bool,
                 head: Seq[int] = ()) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.head = _mlp_head(hidden * (2 if bidirectional else 1), head, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        last = torch.cat([h_n[k] for k in range(h_n.shape[0])], dim=-1)  # [B, dirs * hidden]
        return self.head(last)


def _mlp_head(width: int, head: Seq[int], n_classes: int) -> nn.Sequential:
    """Fully connected layers of widths ``head`` (ReLU between), then a linear layer to ``n_classes`` logits."""
    layers: list[nn.Module] = []
    for h in head:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class _ConcatNet(nn.Module):
    """Potamias et al. §5.3: the codes of ``frames`` frames concatenated, then fully connected layers.

    Each sequence (any length) is linearly resampled in time to ``frames`` frames first, so the
    concatenation has a fixed size ``frames * in_dim``.
    """

    def __init__(self, in_dim: int, frames: int, n_classes: int, head: Seq[int]) -> None:
        super().__init__()
        self.frames = frames
        self.head = _mlp_head(in_dim * frames, head, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        fixed = [nn.functional.interpolate(x[i, :int(n)].T[None], size=self.frames, mode="linear",
                                           align_corners=True)[0].T for i, n in enumerate(lengths.tolist())]
        return self.head(torch.stack(fixed).flatten(1))


class SequenceClassifier(Component):
    """Base of the expression classifiers: per-frame encoding + :class:`_SequenceNet`."""

    kind: ClassVar[str] = "classifier"
    #: what the classifier reads: "landmarks" ([T, L, 3]) or "mesh" ([T, V, 3])
    input_kind: ClassVar[str] = ""
    bidirectional: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.net: _SequenceNet | None = None
        self.meta: dict[str, Any] = {}
        self.device = "cpu"
        #: held-out accuracy (%) on the real test sequences; set by :class:`ClassifierBank`
        self.test_accuracy: float | None = None
        self.test_report: dict[str, Any] = {}
        self.loaded_from_cache = False

    # -- per-frame encoding (subclasses) -----------------------------------------------------
    def _prepare(self, train_arrays: Seq[np.ndarray], hp: dict[str, Any]) -> None:
        """Fit the frame encoder on training arrays (each read when indexed) and fill ``self.meta``."""
        raise NotImplementedError

    def _encode(self, arr: np.ndarray) -> np.ndarray:
        """[T, K] float32 network input of one sequence array."""
        raise NotImplementedError

    def _head(self, hp: dict[str, Any]) -> tuple[int, ...]:
        return ()

    # -- inputs ----------------------------------------------------------------------------
    def _array(self, seq: SequenceLike, where: str) -> np.ndarray:
        topo = self._require_fitted()
        if isinstance(seq, Sequence) and self.input_kind == "landmarks":
            arr = seq.landmarks
            release_mapped(seq.frames)  # the meshes were read only for their landmarks
        elif isinstance(seq, Sequence):
            arr = np.asarray(seq.frames, np.float32)
        else:
            arr = np.asarray(seq, dtype=np.float32)
        if arr.ndim != 3:
            raise ComponentError(f"{self.name} classifier: {where} must be a [T, N, 3] sequence, got "
                                 f"shape {arr.shape}")
        if self.input_kind == "landmarks":
            topo.check_landmarks(arr, where)
        else:
            topo.check_vertices(arr, where)
        if arr.shape[0] < 2:
            raise ComponentError(f"{self.name} classifier: {where} has {arr.shape[0]} frame(s); need >= 2")
        return arr

    def encode(self, sequences: Seq[SequenceLike]) -> list[np.ndarray]:
        """Per-frame network inputs ``[T_i, K]`` of each sequence (a mapped one's pages given back after)."""
        inputs = []
        for i, s in enumerate(sequences):
            inputs.append(self._encode(self._array(s, f"sequence {i}")))
            release_mapped(s.frames if isinstance(s, Sequence) else s)
        return inputs

    # -- training ----------------------------------------------------------------------------
    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """Train on every sequence of ``data`` (already restricted to training identities)."""
        if not data.sequences:
            raise ComponentError(f"cannot train the {self.name} classifier: dataset {data.name!r} has no sequences")
        hp = budget.pick(type(self).budgets)
        t0 = time.perf_counter()
        self.topology, self.labels, self.device = data.topology, list(data.labels), device
        # read one sequence at a time: a dataset's frames may be a memory map far larger than what is kept
        arrays = _Arrays([functools.partial(self._array, s, f"{s.identity}/{s.label}") for s in data.sequences])
        self._prepare(arrays, hp)
        inputs = []
        for i, s in enumerate(data.sequences):
            inputs.append(self._encode(arrays[i]))
            release_mapped(s.frames)
        targets = np.asarray([self.labels.index(s.label) for s in data.sequences], dtype=np.int64)
        self.meta.update({"in_dim": int(inputs[0].shape[1]), "hidden": int(hp["hidden"]),
                          "head": list(self._head(hp)), "n_classes": len(self.labels)})
        seed_everything(seed)
        self._build(device)
        assert self.net is not None
        opt = torch.optim.Adam(self.net.parameters(), lr=hp["lr"], weight_decay=hp.get("weight_decay", 0.0))
        loss_fn = nn.CrossEntropyLoss()
        batch = int(hp["batch_size"])
        jitter = float(hp.get("time_jitter", 0.0))
        config_hash = stable_hash({"config": self.config, "hp": hp, "seed": seed, "n": len(inputs),
                                   "targets": targets.tolist(), "meta": {k: v for k, v in self.meta.items()
                                                                         if not isinstance(v, np.ndarray)}})

        def epoch(_: int, rng: np.random.Generator) -> dict[str, float]:
            assert self.net is not None
            self.net.train()
            order = rng.permutation(len(inputs))
            total, correct, seen = 0.0, 0, 0
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                xs = [_time_jitter(inputs[i], rng, jitter) for i in idx]
                x, lengths = _pad(xs, device)
                y = torch.as_tensor(targets[idx], device=device)
                logits = self.net(x, lengths)
                loss = loss_fn(logits, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(idx)
            return {"loss": total / seen, "train_acc": 100.0 * correct / seen}

        loop = TrainLoop(f"classifier-{self.name}", {"net": self.net, "opt": opt}, hp["epochs"], seed,
                         config_hash, workdir=workdir, progress=progress)
        loop.run(epoch)
        self.net.eval()
        self.train_report = loop.report(seconds=round(time.perf_counter() - t0, 2),
                                        n_sequences=len(inputs), budget=budget.name)
        return self.train_report

    def _build(self, device: str) -> None:
        m = self.meta
        if m.get("design") == "potamias":
            self.net = _ConcatNet(m["in_dim"], int(m["frames"]), m["n_classes"], tuple(m["head"])).to(device)
            return
        self.net = _SequenceNet(m["in_dim"], m["hidden"], m["n_classes"],
                                bool(self.options.get("bidirectional", self.bidirectional)),
                                tuple(m.get("head", ()))).to(device)

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, sequences: Seq[SequenceLike], batch_size: int = 64) -> np.ndarray:
        """Raw class scores ``[N, C]``."""
        self._require_fitted()
        if self.net is None:
            raise ComponentError(f"{self.name} classifier has no network: train or load it first")
        inputs = self.encode(sequences)
        self.net.eval()
        out = []
        for start in range(0, len(inputs), batch_size):
            x, lengths = _pad(inputs[start:start + batch_size], self.device)
            out.append(self.net(x, lengths).float().cpu().numpy())
        n_classes = len(self.labels or [])
        return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)

    def features(self, sequences: Seq[SequenceLike]) -> np.ndarray:
        """Features ``[N, D]`` for the Fréchet distance: the output of the final linear layer."""
        return self.logits(sequences)

    def predict(self, sequences: Seq[SequenceLike]) -> np.ndarray:
        """Predicted label indices ``[N]`` (into ``self.labels``)."""
        return self.logits(sequences).argmax(1).astype(np.int64)

    def evaluate(self, sequences: Seq[Sequence]) -> dict[str, Any]:
        """Accuracy, confusion matrix and per-class precision/recall/F1 on labelled sequences."""
        assert self.labels is not None
        true = self.label_ids([s.label for s in sequences])
        return classification_report(true, self.predict(sequences), self.labels)

    # -- persistence -------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.net is not None
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        for k, v in self.meta.items():
            if isinstance(v, np.ndarray):
                tensors[f"enc.{k}"] = torch.from_numpy(np.ascontiguousarray(v))
        return tensors

    def state_meta(self) -> dict[str, Any]:
        return {k: v for k, v in self.meta.items() if not isinstance(v, np.ndarray)}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.meta = dict(meta)
        for k, v in tensors.items():
            if k.startswith("enc."):
                self.meta[k[4:]] = v.numpy()
        self.device = device
        self._build(device)
        assert self.net is not None
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net.eval()


class LandmarkClassifier(SequenceClassifier):
    """One LSTM layer + linear over the landmark displacement sequence (CA and FID).

    ``bidirectional=False`` is the diffusion paper's independent classifier exactly (Zou et al. §5.1:
    "one LSTM layer followed by a linear layer", FID from that linear layer's output). The suite's
    default reads the sequence both ways (``bidirectional=True``) so that a sequence's end weighs as
    much as its start — onset and offset of an expression are symmetric in N2E2N sequences — and
    because the shipped evaluator and the recorded rows were made with it; ``fc4dfs-bench evaluator
    train --classifiers papers`` builds the paper's.
    """

    name: ClassVar[str] = "landmarks"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "(Bi)LSTM + linear expression classifier on landmark displacement sequences"
    input_kind: ClassVar[str] = "landmarks"
    bidirectional: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {"bidirectional": True}
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 15, "hidden": 32, "lr": 3e-3, "batch_size": 8, "time_jitter": 0.0},
        "quick": {"epochs": 40, "hidden": 128, "lr": 1e-3, "batch_size": 16, "time_jitter": 0.3},
        "paper": {"epochs": 100, "hidden": 256, "lr": 1e-3, "batch_size": 32, "time_jitter": 0.3},
    }

    def _prepare(self, train_arrays: Seq[np.ndarray], hp: dict[str, Any]) -> None:
        disp = np.concatenate([(a - a[:1]).reshape(len(a), -1) for a in train_arrays])
        self.meta = {"scale": float(np.sqrt(np.mean(disp.astype(np.float64) ** 2)) or 1.0)}

    def _encode(self, arr: np.ndarray) -> np.ndarray:
        return ((arr - arr[:1]).reshape(len(arr), -1) / self.meta["scale"]).astype(np.float32)


class MeshClassifier(SequenceClassifier):
    """Per-frame PCA code of the mesh displacement, then a classifier head: CA (mesh), FC-4DFS's CA on
    the decoded meshes.

    ``design="potamias"`` is Potamias et al.'s classifier (§5.3): 64 PCA coefficients per frame, the
    frames' codes concatenated (here after resampling to ``frames`` frames, so any length fits) and
    three fully connected layers. The default ``design="sequence"`` keeps the PCA frame encoder but
    reads the codes with an LSTM before the three FC layers: it takes sequences of any length without
    resampling their timing away, and the shipped evaluator and recorded rows use it;
    ``fc4dfs-bench evaluator train --classifiers papers`` builds the paper's.
    """

    name: ClassVar[str] = "mesh"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("PCA frame encoder + LSTM (or concatenation) + 3 FC layers expression classifier "
                                  "on mesh displacement sequences (Potamias et al. 2020)")
    input_kind: ClassVar[str] = "mesh"
    bidirectional: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {"design": "sequence", "frames": 16}
    DESIGNS: ClassVar[tuple[str, ...]] = ("sequence", "potamias")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["design"] not in self.DESIGNS:
            raise ComponentError(f"mesh classifier: design {self.options['design']!r} is not one of "
                                 f"{', '.join(self.DESIGNS)}")
        if int(self.options["frames"]) < 2:
            raise ComponentError(f"mesh classifier: frames must be >= 2, got {self.options['frames']}")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 15, "components": 16, "hidden": 32, "lr": 3e-3, "weight_decay": 5e-3,
                  "batch_size": 8, "max_pca_frames": 400, "time_jitter": 0.0},
        "quick": {"epochs": 40, "components": 64, "hidden": 128, "lr": 1e-3, "weight_decay": 5e-3,
                  "batch_size": 16, "max_pca_frames": 1500, "time_jitter": 0.3},
        "paper": {"epochs": 13, "components": 64, "hidden": 128, "lr": 1e-3, "weight_decay": 5e-3,
                  "batch_size": 32, "max_pca_frames": 3000, "time_jitter": 0.3},
    }

    def _head(self, hp: dict[str, Any]) -> tuple[int, ...]:
        return (int(hp["hidden"]), int(hp["hidden"]) // 2)

    def _prepare(self, train_arrays: Seq[np.ndarray], hp: dict[str, Any]) -> None:
        # the PCA rows: at most max_pca_frames displacements, evenly spaced over all training frames
        # after the first of each sequence; only the sequences that hold a kept row are read
        starts = np.cumsum([0] + [len(a) - 1 for a in train_arrays])
        keep = np.arange(starts[-1])
        if len(keep) > hp["max_pca_frames"]:
            keep = np.linspace(0, len(keep) - 1, int(hp["max_pca_frames"])).round().astype(np.int64)
        owner = np.searchsorted(starts, keep, side="right") - 1
        rows = []
        for i in np.unique(owner):
            a = train_arrays[int(i)]
            local = keep[owner == i] - starts[i] + 1
            rows.append((a[local] - a[:1]).reshape(len(local), -1))
            release_mapped(a)
        frames = np.concatenate(rows)
        mean, comps = _pca(frames, int(hp["components"]))
        codes = (frames - mean) @ comps.T
        self.meta = {"mean": mean.astype(np.float32), "components": comps.astype(np.float32),
                     "code_scale": float(np.sqrt(np.mean(codes**2)) or 1.0)}
        if self.options["design"] == "potamias":
            self.meta.update({"design": "potamias", "frames": int(self.options["frames"])})

    def _encode(self, arr: np.ndarray) -> np.ndarray:
        disp = torch.from_numpy(np.ascontiguousarray((arr - arr[:1]).reshape(len(arr), -1)))
        codes = (disp - torch.from_numpy(self.meta["mean"])) @ torch.from_numpy(self.meta["components"]).T
        return (codes / self.meta["code_scale"]).numpy().astype(np.float32)


def _pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and the top ``k`` principal axes ``[k, D]`` of the rows of ``x``.

    Uses the smaller of the Gram (``N x N``) and covariance (``D x D``) eigenproblems, in torch
    so that it follows ``torch.set_num_threads``.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    mean = xt.mean(0)
    xc = xt - mean
    k = max(1, min(k, xc.shape[0] - 1, xc.shape[1]))
    if xc.shape[0] <= xc.shape[1]:
        w, v = torch.linalg.eigh(xc @ xc.T)
        w, v = w.flip(0)[:k].clamp_min(1e-12), v.flip(1)[:, :k]
        comps = (v.T @ xc) / w.sqrt()[:, None]
    else:
        _, v = torch.linalg.eigh(xc.T @ xc)
        comps = v.flip(1)[:, :k].T.contiguous()
    comps = comps.numpy()
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(1)])  # deterministic orientation
    return mean.numpy(), comps * signs[:, None]


def _pad(xs: Seq[np.ndarray], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.as_tensor([len(x) for x in xs], dtype=torch.int64)
    x = pad_sequence([torch.from_numpy(np.ascontiguousarray(a)) for a in xs], batch_first=True)
    return x.to(device), lengths


def _time_jitter(x: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Resample ``x`` to a random length within ``±amount`` of its own (training augmentation)."""
    if amount <= 0:
        return x
    length = max(3, int(round(len(x) * rng.uniform(1 - amount, 1 + amount))))
    return resample_frames(x, length)


# --------------------------------------------------------------------------- cache
CLASSIFIERS: dict[str, type[SequenceClassifier]] = {"landmarks": LandmarkClassifier, "mesh": MeshClassifier}
#: the classifier options of each named design set: the suite's defaults, and the papers' own
#: (Zou et al. §5.1's one-LSTM-layer + linear IC; Potamias et al. §5.3's PCA + concatenation + 3 FC)
DESIGNS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {"landmarks": {}, "mesh": {}},
    "papers": {"landmarks": {"bidirectional": False}, "mesh": {"design": "potamias"}},
}


def classifier_budget(budget: Budget) -> Budget:
    """The budget the evaluation classifiers of a run at ``budget`` train at.

    ``smoke`` stays ``smoke``; ``quick`` and ``paper`` both train the classifiers at ``quick`` so that
    runs at those two budgets are scored by the same judges. ``--budget-opt`` overrides are kept (they
    reach every trained thing) and, like the budget name, are part of the classifiers' store key.
    """
    return Budget("smoke" if budget.name == "smoke" else "quick", dict(budget.overrides))


class ClassifierBank:
    """Each expression classifier trained once per dataset, split, budget and seed, through the component
    store (:func:`fc4dfs.zoo.store.train_or_load`).

    ``get(kind)`` (kind ``"landmarks"`` or ``"mesh"``) returns a trained classifier with
    ``predict``, ``features`` and ``test_accuracy`` (held-out accuracy in % on the real
    sequences of the identities outside ``train_ids``, kept in the checkpoint's ``train_report``).
    The store key (:func:`fc4dfs.zoo.store.store_key`) covers the dataset fingerprint, the
    training identities, the classifier's name and version, the seed, the budget with its overrides
    and the hyper-parameters they resolve to; ``retrain=True`` trains again and overwrites the stored
    model. ``store`` overrides the store folder (default ``$FC4DFS_CACHE/components``).

    Frozen evaluators (:mod:`fc4dfs.benchmark.evaluators`) come first: ``evaluator`` (a file written by
    ``fc4dfs-bench evaluator train``) is loaded and used for every kind, and without one the evaluator
    file shipped with the package for exactly this dataset version, split and seed is (at any budget:
    a frozen evaluator does not depend on the run's budget), unless ``use_shipped=False`` or
    ``retrain``. When the dataset has a shipped file made for another version, ``log`` says that the
    classifiers are trained through the store instead. :meth:`evaluator` names what scored.
    """

    def __init__(self, dataset: Dataset, train_ids: Seq[str] | None = None, seed: int = 0,
                 device: str = "cpu", retrain: bool = False, budget: str | Budget = "quick",
                 progress: bool = False, store: Path | None = None, evaluator: Path | None = None,
                 use_shipped: bool = True, log: Callable[[str], None] | None = None,
                 options: dict[str, dict[str, Any]] | None = None) -> None:
        self.dataset = dataset
        self.train_ids = list(train_ids) if train_ids is not None else dataset.generator_split()[0]
        unknown = set(self.train_ids) - set(dataset.identities)
        if unknown:
            raise ComponentError(f"train_ids not in dataset {dataset.name!r}: {sorted(unknown)}")
        self.test_ids = [i for i in dataset.identities if i not in set(self.train_ids)]
        self.seed = int(seed)
        self.device = device
        self.retrain = retrain
        self.budget = budget if isinstance(budget, Budget) else Budget(budget)
        self.progress = progress
        self.store = store
        #: per kind, the classifier's options (see :data:`DESIGNS`); the shipped evaluator has the defaults
        self.options = {k: dict(v) for k, v in (options or {}).items() if v}
        self.evaluator_file = Path(evaluator) if evaluator is not None else None
        self.use_shipped = use_shipped and not retrain and not self.options
        self.log = log or (lambda s: print(s, file=sys.stderr))
        self._frozen: Any = None  # the loaded Evaluator, once looked up
        self._looked_up = False
        self._loaded: dict[str, SequenceClassifier] = {}
        self._paths: dict[str, Path] = {}
        #: kinds this bank trained (rather than loaded from the store)
        self.trained: list[str] = []

    def _cls(self, kind: str) -> type[SequenceClassifier]:
        if kind not in CLASSIFIERS:
            raise ComponentError(f"unknown classifier kind {kind!r}; choose one of {', '.join(CLASSIFIERS)}")
        return CLASSIFIERS[kind]

    def key(self, kind: str) -> str:
        """Store key of the ``kind`` classifier for this dataset, split, seed and budget."""
        from fc4dfs.zoo.store import store_key

        return store_key(self._cls(kind)(**self.options.get(kind, {})), self.dataset.fingerprint, self.train_ids,
                         self.budget, self.seed)

    def path(self, kind: str) -> Path:
        """The stored checkpoint of the ``kind`` classifier (after :meth:`get`)."""
        if kind not in self._paths:
            self.get(kind)
        return self._paths[kind]

    def frozen(self) -> Any:
        """The frozen :class:`~fc4dfs.benchmark.evaluators.Evaluator` this bank scores with, or None
        (the classifiers then come from the store)."""
        if self._looked_up:
            return self._frozen
        from fc4dfs.benchmark import evaluators as ev

        self._looked_up = True
        if self.evaluator_file is not None:
            self._frozen = ev.load_evaluator(self.evaluator_file, self.dataset, self.device)
        elif self.use_shipped:
            path = ev.shipped_file(self.dataset, self.train_ids, self.seed)
            if path is not None:
                self._frozen = ev.load_evaluator(path, self.dataset, self.device, source=f"shipped {path.name}")
            elif (ev.SHIPPED / f"{self.dataset.name}.safetensors").is_file():
                self.log(f"note: the shipped {self.dataset.name} evaluator was made for another version of the "
                         f"dataset or split (this is {self.dataset.fingerprint}); training the classifiers "
                         f"through the component store at budget {self.budget.name}")
        return self._frozen

    def evaluator(self) -> Any:
        """The :class:`~fc4dfs.benchmark.evaluators.Evaluator` of the classifiers used so far: the frozen
        one, or the store's classifiers with the content hash of their tensors; None when none was used."""
        from fc4dfs.benchmark import evaluators as ev

        if self.frozen() is not None:
            return self._frozen
        if not self._loaded:
            return None
        digest = ev.content_hash(ev.bundle_tensors(self._loaded))
        return ev.Evaluator(dict(self._loaded), digest, f"store ({self.budget.name})")

    def get(self, kind: str) -> SequenceClassifier:
        """The ``kind`` classifier: of the frozen evaluator, or trained now and stored, or loaded from
        the store."""
        if kind in self._loaded:
            return self._loaded[kind]
        self._cls(kind)
        if self.frozen() is not None:
            return self._frozen.get(kind)
        from fc4dfs.zoo.store import train_or_load

        cls = self._cls(kind)
        test = self.dataset.subset(self.test_ids).sequences if self.test_ids else []

        def held_out(clf: Component) -> None:
            assert isinstance(clf, SequenceClassifier)
            clf.train_report["test_report"] = clf.evaluate(test) if test else {}
            clf.train_report["test_ids"] = self.test_ids

        trained = train_or_load(cls(**self.options.get(kind, {})), self.dataset, self.train_ids, self.budget, self.seed, device=self.device,
                                progress=self.progress, finish=held_out, retrain=self.retrain, store=self.store)
        clf = trained.component
        assert isinstance(clf, SequenceClassifier)
        clf.test_report = clf.train_report.get("test_report", {})
        clf.test_accuracy = clf.test_report.get("accuracy")
        clf.loaded_from_cache = trained.cached
        if not trained.cached:
            self.trained.append(kind)
        self._loaded[kind], self._paths[kind] = clf, trained.path
        return clf

    __call__ = get
