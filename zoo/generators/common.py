"""Shared parts of the frame-by-frame generators (MLP, LSTM, FC-LSTM) of FC-4DFS.

- the framerate-aware relative positional encoding (FC-4DFS Eq. 5-6);
- variable-length training data: every training sequence resampled to several lengths
  (plus its native length), as the paper's aligned datasets;
- the training loss ``L = L_re + alpha * L_temporal`` (Eq. 10-12);
- :class:`DisplacementGenerator`, the Generator base that trains a sequence model through
  :class:`fc4dfs.zoo.training.TrainLoop` and generates any length at any frame rate;
- optional intensity and timing conditioning (a generator's :meth:`active_controls`): each training
  sequence's relative intensity and onset/apex/offset are measured from its mesh displacement curve
  with the rule of :mod:`fc4dfs.datasets.phases` (so a request means what the adherence metrics
  measure on the output) and handed to the model as ``intensity [B]`` and the per-frame phase
  amplitude ``amplitude [B, T]`` (Potamias et al. §5.1).

The models predict per-frame landmark *displacements from the neutral* (in units of the training
displacements' RMS) and see the neutral landmarks as a few whitened principal-component
coefficients over the training identities; these statistics travel in the checkpoint. Frame 0 is
the given neutral exactly; inputs and outputs are in mm.
"""
from __future__ import annotations

import math
import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence as Seq

import numpy as np
import torch
from torch import nn

from fc4dfs.datasets.base import Dataset, resample_frames
from fc4dfs.datasets.phases import PHASES, label_peaks, measure_timing, phase_amplitude, relative_intensity
from fc4dfs.datasets.storage import release_mapped, stable_hash
from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.plugins.contracts import Budget, Generator
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.normalise import Normaliser, rms
from fc4dfs.zoo.training import TrainLoop


# --------------------------------------------------------------------------- positions (Eq. 5-6)
def relative_positions(lengths: torch.Tensor, fps: torch.Tensor, steps: int, offset: int = 0) -> torch.Tensor:
    """Relative positions ``p~_t = p_t / L`` (Eq. 5) for frames ``t = offset .. offset+steps-1``.

    ``p_t = t / fps`` is the frame's time point and ``L = (T - 1) / fps`` the duration of the whole
    sequence, so ``p~`` runs from 0 (first frame) to 1 (last frame); ``offset`` = -1 / +1 gives
    the previous / next frame's position used by Eq. 7. ``lengths`` and ``fps`` are ``[B]``;
    returns ``[B, steps]``.
    """
    t = torch.arange(steps, dtype=torch.float32, device=lengths.device) + offset
    fps = fps.to(torch.float32).unsqueeze(1)
    p = t.unsqueeze(0) / fps
    duration = (lengths.to(torch.float32).unsqueeze(1) - 1.0) / fps
    return p / duration


def positional_encoding(p_rel: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Sinusoidal encoding of relative positions (Eq. 6): ``[..., ] -> [..., dim]``.

    ``PE^{2j} = sin(p~ / base^{2j/d})`` and ``PE^{2j+1} = cos(p~ / base^{2j/d})``.
    """
    if dim < 2 or dim % 2:
        raise ComponentError(f"positional encoding dimension must be even and >= 2, got {dim}")
    j = torch.arange(dim // 2, dtype=torch.float32, device=p_rel.device)
    inv = base ** (-2.0 * j / dim)
    ang = p_rel.unsqueeze(-1) * inv
    out = torch.empty(*p_rel.shape, dim, dtype=torch.float32, device=p_rel.device)
    out[..., 0::2] = torch.sin(ang)
    out[..., 1::2] = torch.cos(ang)
    return out


# --------------------------------------------------------------------------- loss (Eq. 10-12)
def sequence_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``L_re + alpha * L_temporal`` over padded batches of displacement sequences.

    ``pred`` and ``target`` are ``[B, T, D]`` with frame 0 equal to the (zero) neutral
    displacement; ``mask`` ``[B, T]`` marks real frames. ``L_re`` is the mean L1 error of frames
    1..T-1 (Eq. 11); ``L_temporal`` the mean L1 error of the motion ``m_t = x_t - x_{t-1}``
    between adjacent real frames (Eq. 12). Returns ``(total, L_re, L_temporal)``.
    """
    m = mask[:, 1:].to(pred.dtype).unsqueeze(-1)
    denom = m.sum() * pred.shape[-1]
    l_re = ((pred[:, 1:] - target[:, 1:]).abs() * m).sum() / denom
    motion_err = (pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])
    l_temp = (motion_err.abs() * m).sum() / denom
    total = l_re + alpha * l_temp if alpha > 0 else l_re
    return total, l_re, l_temp


# --------------------------------------------------------------------------- training data
@dataclass
class TrainingSequences:
    """Padded landmark sequences of the training identities, several lengths per sequence."""

    neutral: np.ndarray  # [N, L, 3] frame-0 landmarks, mm
    disp: np.ndarray  # [N, Tmax, L, 3] displacement from frame 0, zero-padded, mm
    lengths: np.ndarray  # [N] int64
    fps: np.ndarray  # [N] float32
    label_ids: np.ndarray  # [N] int64
    source: np.ndarray  # [N] int64: index of the dataset sequence each one was resampled from
    #: with ``controls``: relative intensity [N] (1 = the label's mean apex) and phase amplitude [N, Tmax]
    intensity: np.ndarray | None = None
    amplitude: np.ndarray | None = None
    #: with ``controls``: each label's mean relative onset/apex/offset/rest (the default timing)
    label_timing: dict[str, dict[str, float]] | None = None

    def __len__(self) -> int:
        return len(self.lengths)


def prepare_sequences(data: Dataset, labels: list[str], train_lengths: Seq[int],
                      include_native: bool = True, controls: bool = False) -> TrainingSequences:
    """Every sequence of ``data`` resampled to each of ``train_lengths`` (and kept at its native length).

    Resampling keeps the duration (so the frame rate changes), as
    :meth:`fc4dfs.datasets.base.Sequence.resampled` does; it is done on landmarks, which is the same
    as resampling the meshes because the landmark embedding is linear. With ``controls`` each
    sequence's relative intensity and timing are measured on its meshes (relative times and
    magnitudes do not change with resampling) and kept per resampled version.
    """
    if not data.sequences:
        raise ComponentError(f"dataset {data.name!r} has no training sequences")
    items: list[tuple[np.ndarray, float, int]] = []
    source: list[int] = []
    for k_seq, s in enumerate(data.sequences):
        lm = s.landmarks
        release_mapped(s.frames)  # the meshes were read only for their landmarks
        lengths = sorted({int(t) for t in train_lengths} | ({s.length} if include_native else set()))
        for t_len in lengths:
            if t_len < 2:
                raise ComponentError(f"train_lengths must be >= 2 frames, got {t_len}")
            fps = (t_len - 1) / s.duration if s.duration > 0 else s.fps
            items.append((resample_frames(lm, t_len), float(fps), labels.index(s.label)))
            source.append(k_seq)
    t_max = max(x[0].shape[0] for x in items)
    n, n_lm = len(items), items[0][0].shape[1]
    disp = np.zeros((n, t_max, n_lm, 3), dtype=np.float32)
    neutral = np.empty((n, n_lm, 3), dtype=np.float32)
    for k, (lm, _, _) in enumerate(items):
        neutral[k] = lm[0]
        disp[k, : len(lm)] = lm - lm[0]
    out = TrainingSequences(neutral, disp, np.array([len(x[0]) for x in items], dtype=np.int64),
                            np.array([x[1] for x in items], dtype=np.float32),
                            np.array([x[2] for x in items], dtype=np.int64), np.array(source, dtype=np.int64))
    if controls:
        peaks = label_peaks(data.sequences)
        timings = [measure_timing(np.asarray(s.frames, np.float32)) for s in data.sequences]
        levels = np.array([relative_intensity(s.frames, peaks[s.label]) for s in data.sequences], np.float32)
        out.intensity = levels[out.source]
        out.amplitude = np.zeros((n, t_max), dtype=np.float32)
        for k, (k_seq, t_len) in enumerate(zip(out.source, out.lengths)):
            out.amplitude[k, :t_len] = phase_amplitude(timings[k_seq], int(t_len))
        out.label_timing = {}
        for lab in labels:
            own = [t for t, s in zip(timings, data.sequences) if s.label == lab]
            if own:
                out.label_timing[lab] = {p: float(np.mean([t[p] for t in own])) for p in (*PHASES, "rest")}
    return out


def fit_sequence_normaliser(norm: Normaliser, seqs: TrainingSequences, identity_dims: int) -> Normaliser:
    """Fit ``norm``'s fields on ``seqs``: ``neutral`` (the flattened neutral landmarks ``[N, 3L]``,
    whitened onto ``identity_dims`` principal components) and ``disp`` (displacements in units of their
    RMS over the real, unpadded frames, floored at 1e-3 mm)."""
    norm.fit_pca("neutral", seqs.neutral.reshape(len(seqs), -1), identity_dims)
    mask = np.arange(seqs.disp.shape[1])[None, :] < seqs.lengths[:, None]
    return norm.add("disp", std=max(rms(seqs.disp[mask]), 1e-3))


def one_length_each(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices picking, for every source sequence, one of its resampled versions at random."""
    order = rng.permutation(len(source))
    _, first = np.unique(source[order], return_index=True)
    return np.sort(order[first])


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                   subset: np.ndarray | None = None) -> list[np.ndarray]:
    """Shuffled minibatches of sequences of similar length (little padding), in shuffled order.

    ``subset`` restricts the epoch to those indices (all by default).
    """
    pool = np.arange(len(lengths)) if subset is None else np.asarray(subset)
    order = pool[rng.permutation(len(pool))]
    order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class SequenceModel(nn.Module):
    """A network mapping a condition to a normalised displacement sequence ``[B, T, 3L]``."""

    @abstractmethod
    def forward(self, neutral_n: torch.Tensor, label_ids: torch.Tensor, lengths: torch.Tensor,
                fps: torch.Tensor, steps: int) -> torch.Tensor:
        """Frames 0..steps-1 (frame 0 is zeros) for sequences of ``lengths`` frames at ``fps``.

        Models of generators with active controls also take ``intensity [B]`` (relative, 1 = the
        label's typical apex) and/or ``amplitude [B, steps]`` (phase amplitude in [0, 1]) keywords.
        """


# --------------------------------------------------------------------------- generator base
class DisplacementGenerator(Generator):
    """Generator base: trains a :class:`SequenceModel` with ``L_re + alpha * L_temporal``.

    Subclasses set ``name``/``description``/``defaults`` and implement :meth:`build_model`.
    Options shared by all: ``temporal_alpha`` (alpha of Eq. 10; 0 switches the temporal loss
    off), ``train_lengths`` and ``include_native`` (the variable-length training set),
    ``identity_dims`` (how many principal components of the neutral landmarks the network sees).
    """

    common_defaults: ClassVar[dict[str, Any]] = {
        "temporal_alpha": 0.3,
        "train_lengths": [20, 25, 30],
        "include_native": True,
        # principal components of the neutral landmarks the networks see; None: a quarter of the
        # number of training identities (1 to 16)
        "identity_dims": None,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        # epochs; Adam lr, cosine-annealed to lr * lr_final_ratio; minibatch size; grad-norm clip;
        # decoupled weight decay (AdamW; 0 is plain Adam); one_length_per_epoch: each epoch sees every
        # sequence once, at one of its lengths drawn at random
        "smoke": {"epochs": 8, "lr": 5e-3, "lr_final_ratio": 0.1, "batch_size": 32, "clip": 1.0,
                  "weight_decay": 0.0, "one_length_per_epoch": True},
        "quick": {"epochs": 100, "lr": 5e-3, "lr_final_ratio": 0.01, "batch_size": 32, "clip": 1.0,
                  "weight_decay": 0.0, "one_length_per_epoch": True},
        # FC-4DFS 4.1: Adam, lr 1e-5, 1,200 epochs on CoMA (600 on Florence4D: override epochs=600),
        # every length of every sequence in every epoch
        "paper": {"epochs": 1200, "lr": 1e-5, "lr_final_ratio": 1.0, "batch_size": 32, "clip": 1.0,
                  "weight_decay": 0.0, "one_length_per_epoch": False},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        alpha = float(self.options["temporal_alpha"])
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise ComponentError(f"{self.name}: temporal_alpha must be a finite number >= 0, got {alpha}")
        self.options["temporal_alpha"] = alpha
        self.options["train_lengths"] = [int(t) for t in self.options["train_lengths"]]
        if self.options["identity_dims"] is not None and int(self.options["identity_dims"]) < 0:
            raise ComponentError(f"{self.name}: identity_dims must be >= 0, got {self.options['identity_dims']}")
        self.model: SequenceModel | None = None
        self.norm: Normaliser | None = None
        self.identity_dims = 0
        self.device = "cpu"
        #: each label's mean relative onset/apex/offset/rest over training (the default timing)
        self.label_timing: dict[str, dict[str, float]] = {}

    # -- model --------------------------------------------------------------------------------
    @abstractmethod
    def build_model(self, num_landmarks: int, num_labels: int) -> SequenceModel:
        """The untrained network for ``num_landmarks`` landmarks and ``num_labels`` labels."""

    def _build(self, num_landmarks: int, num_labels: int, identity_dims: int, device: str) -> None:
        self.identity_dims = identity_dims
        self.norm = Normaliser().to(device)
        self.model = self.build_model(num_landmarks, num_labels).to(device)
        self.device = device

    @staticmethod
    def auto_identity_dims(num_identities: int) -> int:
        """Default ``identity_dims``: a quarter of the training identities, between 1 and 16."""
        return int(min(16, max(1, num_identities // 4)))

    # -- training -----------------------------------------------------------------------------
    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        """Train on ``data`` (training identities only) at ``budget``; resumable through ``workdir``."""
        t0 = time.perf_counter()
        hp = budget.pick(self.budgets)
        labels = list(data.labels)
        active = self.active_controls()
        seqs = prepare_sequences(data, labels, self.options["train_lengths"], self.options["include_native"],
                                 controls=bool(active))
        self.label_timing = seqs.label_timing or {}
        torch.manual_seed(seed)
        k = self.options["identity_dims"]
        self._build(data.topology.num_landmarks, len(labels),
                    self.auto_identity_dims(len(data.identities)) if k is None else int(k), device)
        assert self.model is not None and self.norm is not None
        self.norm = fit_sequence_normaliser(Normaliser(), seqs, self.identity_dims).to(device)
        model, norm = self.model, self.norm
        opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        epochs = int(hp["epochs"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs),
                                                           eta_min=hp["lr"] * hp["lr_final_ratio"])
        dev = torch.device(device)
        neutral_n = norm.encode("neutral", torch.from_numpy(seqs.neutral).to(dev).flatten(1))
        disp = torch.from_numpy(seqs.disp).to(dev)  # encoded per batch: no second copy of the training set
        lengths = torch.from_numpy(seqs.lengths).to(dev)
        fps = torch.from_numpy(seqs.fps).to(dev)
        label_ids = torch.from_numpy(seqs.label_ids).to(dev)
        conditions: dict[str, torch.Tensor] = {}
        if "intensity" in active:
            assert seqs.intensity is not None
            conditions["intensity"] = torch.from_numpy(seqs.intensity).to(dev)
        if "timing" in active:
            assert seqs.amplitude is not None
            conditions["amplitude"] = torch.from_numpy(seqs.amplitude).to(dev)
        alpha = self.options["temporal_alpha"]
        run_hash = stable_hash({"config": self.config, "hp": hp, "seed": seed, "data": data.fingerprint,
                                "n": len(seqs)})

        def epoch_fn(epoch: int, rng: np.random.Generator) -> dict[str, float]:
            model.train()
            tot = re = tmp = 0.0
            count = 0
            subset = one_length_each(seqs.source, rng) if hp["one_length_per_epoch"] else None
            for idx_np in length_batches(seqs.lengths, int(hp["batch_size"]), rng, subset):
                idx = torch.from_numpy(idx_np).to(dev)
                steps = int(seqs.lengths[idx_np].max())
                ln = lengths[idx]
                cond = {k: (v[idx, :steps] if k == "amplitude" else v[idx]) for k, v in conditions.items()}
                pred = model(neutral_n[idx], label_ids[idx], ln, fps[idx], steps, **cond)
                mask = torch.arange(steps, device=dev).unsqueeze(0) < ln.unsqueeze(1)
                target = norm.encode("disp", disp[idx, :steps]).flatten(2)
                loss, l_re, l_t = sequence_loss(pred, target, mask, alpha)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if hp["clip"]:
                    nn.utils.clip_grad_norm_(model.parameters(), hp["clip"])
                opt.step()
                k = len(idx_np)
                tot, re, tmp, count = tot + k * loss.item(), re + k * l_re.item(), tmp + k * l_t.item(), count + k
            sched.step()
            return {"loss": tot / count, "l_re": re / count, "l_temporal": tmp / count}

        loop = TrainLoop(self.name, {"model": model, "opt": opt, "sched": sched}, epochs, seed,
                         run_hash, workdir=workdir, progress=progress)
        loop.run(epoch_fn)
        model.eval()
        self.topology = data.topology
        self.labels = labels
        self.train_report = loop.report(seconds=round(time.perf_counter() - t0, 3), sequences=len(seqs),
                                        disp_scale_mm=float(norm.stat("disp_std")))
        return self.train_report

    # -- generation ---------------------------------------------------------------------------
    def generate(self, neutral_landmarks: np.ndarray, labels: Seq[str], length: int,
                 fps: float | None = None, seed: int | None = None, intensity: float | Seq[float] | None = None,
                 timing: Mapping[str, float] | Seq[Mapping[str, float]] | None = None) -> np.ndarray:
        """Landmark sequences ``[B, T, L, 3]`` (mm); deterministic, so ``seed`` is unused.

        ``intensity`` and ``timing`` as in :meth:`fc4dfs.plugins.contracts.Pipeline.synthesize`, for
        the controls this generator's options switch on (ComponentError otherwise); unset, intensity
        is 1 and timing the label's mean over the training sequences.
        """
        self.check_generate_inputs(neutral_landmarks, labels, length)
        levels, timings = self.check_controls(len(labels), intensity, timing)
        fps = float(self.default_fps if fps is None else fps)
        if not (fps > 0 and math.isfinite(fps)):
            raise ComponentError(f"fps must be a positive number, got {fps}")
        ids = torch.from_numpy(self.label_ids(labels)).to(self.device)
        assert self.model is not None and self.norm is not None
        with torch.inference_mode():
            neutral = torch.from_numpy(np.ascontiguousarray(neutral_landmarks, dtype=np.float32)).to(self.device)
            b, t_len = neutral.shape[0], int(length)
            lengths = torch.full((b,), t_len, dtype=torch.int64, device=self.device)
            fps_t = torch.full((b,), fps, dtype=torch.float32, device=self.device)
            cond = self.condition_inputs(labels, t_len, levels, timings)
            disp_n = self.model(self.norm.encode("neutral", neutral.flatten(1)), ids, lengths, fps_t, t_len, **cond)
            out = neutral.unsqueeze(1) + self.norm.decode("disp", disp_n.unflatten(-1, (-1, 3)))
            out[:, 0] = neutral
        return out.cpu().numpy().astype(np.float32, copy=False)

    def condition_inputs(self, labels: Seq[str], length: int, levels: Seq[float] | None,
                         timings: Seq[Mapping[str, float]] | None) -> dict[str, torch.Tensor]:
        """The model's ``intensity [B]`` / ``amplitude [B, T]`` keywords for the active controls (defaults:
        intensity 1, each label's typical timing)."""
        active, out = self.active_controls(), {}
        if "intensity" in active:
            out["intensity"] = torch.tensor(levels if levels is not None else [1.0] * len(labels),
                                            dtype=torch.float32, device=self.device)
        if "timing" in active:
            fallback = {"onset": 0.1, "apex": 0.6, "offset": 1.0}
            tms = timings if timings is not None else [self.label_timing.get(lab, fallback) for lab in labels]
            out["amplitude"] = torch.from_numpy(np.stack([phase_amplitude(t, length) for t in tms])).to(self.device)
        return out

    # -- persistence --------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.model is not None and self.norm is not None
        return {**prefixed("model", self.model.state_dict()), **prefixed("norm", self.norm.state_dict())}

    def state_meta(self) -> dict[str, Any]:
        assert self.topology is not None and self.labels is not None
        meta = {"num_landmarks": self.topology.num_landmarks, "num_labels": len(self.labels),
                "identity_dims": self.identity_dims}
        if "timing" in self.active_controls():
            meta["label_timing"] = self.label_timing
        return meta

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self._build(int(meta["num_landmarks"]), int(meta["num_labels"]), int(meta["identity_dims"]), device)
        self.label_timing = dict(meta.get("label_timing", {}))
        assert self.model is not None and self.norm is not None
        self.model.load_state_dict(unprefixed("model", tensors))
        self.norm = Normaliser.from_state(unprefixed("norm", tensors)).to(device)
        self.model.eval()
