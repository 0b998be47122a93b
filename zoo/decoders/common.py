"""Shared parts of the neural landmark decoders (Neural3DMM, S2D, MIADNet).

- :func:`collect_frames`: the training frames of a dataset (targets, landmarks, neutrals);
- :func:`fit_decoder_normaliser`: the statistics (a :class:`~fc4dfs.zoo.normalise.Normaliser`) that map
  millimetres to the networks' normalised space;
- spiral building blocks over a :class:`~fc4dfs.zoo.mesh.hierarchy.MeshHierarchy`:
  :class:`SpiralEncoder` (features at every level) and :class:`SpiralGenerator` (the
  Neural3DMM / S2D decoder: linear layer, then up-sample + spiral convolution per level);
- :class:`SpiralMeshDecoder`: the Decoder base that builds the hierarchy, trains the network
  through :class:`~fc4dfs.zoo.training.TrainLoop`, decodes in chunks and saves everything
  (weights, hierarchy, statistics) in the checkpoint.

Every network maps ``(dl [N, L, 3], l0 [I, L, 3], m0 [I, V, 3], ident [N])`` to ``[N, V, 3]`` in
normalised units: ``dl`` landmark displacements from the neutral, ``l0`` / ``m0`` neutral landmarks /
meshes of the ``I`` identities in the batch, ``ident`` each frame's identity row.
"""
from __future__ import annotations

import math
import time
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence as Seq

import numpy as np
import torch
from torch import nn

from fc4dfs.datasets.base import Dataset
from fc4dfs.datasets.storage import stable_hash
from fc4dfs.plugins.checkpoint import prefixed, unprefixed
from fc4dfs.plugins.contracts import Budget, Decoder
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.mesh.hierarchy import MeshHierarchy, cached_hierarchy
from fc4dfs.zoo.mesh.layers import Resample, SpiralConv
from fc4dfs.zoo.products import Linear
from fc4dfs.zoo.normalise import Normaliser, rms
from fc4dfs.zoo.training import TrainLoop, seed_everything

#: hierarchy settings every spiral decoder accepts as options (Neural3DMM's defaults)
HIERARCHY_DEFAULTS: dict[str, Any] = {
    "downsampling": [4, 4, 4, 4],
    "spiral_steps": [2, 2, 1, 1, 1],
    "spiral_dilation": [2, 2, 1, 1, 1],
    "min_level_vertices": 12,
}
#: paper budget shared by the spiral decoders (Adam 1e-3, decay 0.99 per epoch, 300 epochs)
PAPER = {"epochs": 300, "lr": 1e-3, "lr_decay": 0.99, "max_frames": None}


# --------------------------------------------------------------------------- data
@dataclass
class FrameSet:
    """Training frames: ``frames[n]`` belongs to identity row ``ident[n]``."""

    frames: np.ndarray  # [N, V, 3] mm
    landmarks: np.ndarray  # [N, L, 3] mm
    ident: np.ndarray  # [N] int64
    neutrals: np.ndarray  # [I, V, 3] mm
    neutral_landmarks: np.ndarray  # [I, L, 3] mm
    identities: list[str]


def collect_frames(data: Dataset, max_frames: int | None = None) -> FrameSet:
    """Every frame of every sequence, or ``max_frames`` of them evenly spaced over all frames.

    The subsample walks the concatenation of all sequences with a fixed stride, so every sequence
    contributes in proportion to its length and at every phase of the motion (not only frame 0).
    """
    if not data.sequences:
        raise ComponentError(f"dataset {data.name!r} has no sequences to train on")
    ids = list(dict.fromkeys(s.identity for s in data.sequences))
    row = {i: k for k, i in enumerate(ids)}
    lengths = np.array([s.length for s in data.sequences])
    starts = np.concatenate([[0], np.cumsum(lengths)])
    total = int(starts[-1])
    if max_frames and total > max_frames:
        pick = np.unique(np.linspace(0, total - 1, int(max_frames)).round().astype(np.int64))
    else:
        pick = np.arange(total)
    seq_of = np.searchsorted(starts, pick, side="right") - 1
    frames, ident = [], []
    for k, s in enumerate(data.sequences):
        local = pick[seq_of == k] - starts[k]
        if len(local):
            frames.append(np.asarray(s.frames[local], dtype=np.float32))
            ident.append(np.full(len(local), row[s.identity], dtype=np.int64))
    f = np.concatenate(frames)
    neutrals = np.stack([data.neutral(i) for i in ids]).astype(np.float32)
    topo = data.topology
    return FrameSet(f, topo.landmarks(f), np.concatenate(ident), neutrals, topo.landmarks(neutrals), ids)


def fit_decoder_normaliser(fs: FrameSet, weighting: str = "uniform") -> Normaliser:
    """The decoders' statistics from the training frames ``fs``.

    Fields: ``neutral`` and ``neutrallm`` (neutral meshes / landmarks minus their mean over identities,
    over one scale: the RMS of the neutral meshes about their mean, + 1e-3 mm), ``lmdisp`` and ``disp``
    (landmark / vertex displacements from the neutral over their RMS, + 1e-3 mm), ``mesh`` (Neural3DMM's
    per-vertex mean and standard deviation, floored at 1e-2 mm). Statistics: ``extent`` (RMS distance of
    the mean neutral's vertices from its centroid, mm) and ``vertex_weights`` ``[V]`` (L1 loss weights:
    ones, or with ``weighting="motion"`` proportional to each vertex's mean displacement + 0.1, mean 1).

    Raises ComponentError for another ``weighting``.
    """
    mean_neutral = fs.neutrals.mean(0)
    disp = fs.frames - fs.neutrals[fs.ident]
    dlm = fs.landmarks - fs.neutral_landmarks[fs.ident]
    neutral_scale = rms(fs.neutrals - mean_neutral) + 1e-3
    if weighting == "motion":
        mag = np.linalg.norm(disp, axis=-1).mean(0)
        w = mag / max(float(mag.mean()), 1e-9) + 0.1
        w = w / w.mean()
    elif weighting == "uniform":
        w = np.ones(fs.frames.shape[1])
    else:
        raise ComponentError(f"loss_weights must be 'uniform' or 'motion', got {weighting!r}")
    return (Normaliser()
            .add("neutral", mean_neutral, neutral_scale)
            .add("neutrallm", fs.neutral_landmarks.mean(0), neutral_scale)
            .add("lmdisp", std=rms(dlm) + 1e-3)
            .add("disp", std=rms(disp) + 1e-3)
            .add("mesh", fs.frames.mean(0), np.maximum(fs.frames.std(0), 1e-2))
            .add_statistic("extent", rms(mean_neutral - mean_neutral.mean(0)) + 1e-3)
            .add_statistic("vertex_weights", w))


def normalised_inputs(norm: Normaliser, landmarks: torch.Tensor, neutral_lm: torch.Tensor, neutral: torch.Tensor,
                      ident: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised ``(dl, l0, m0)`` from millimetre landmarks ``[N, L, 3]``, neutral landmarks ``[I, L, 3]``
    and neutrals ``[I, V, 3]`` (``ident`` ``[N]``: each frame's identity row)."""
    return (norm.encode("lmdisp", landmarks - neutral_lm[ident]), norm.encode("neutrallm", neutral_lm),
            norm.encode("neutral", neutral))


# --------------------------------------------------------------------------- spiral blocks
def level_filters(filters: Seq[int], n_levels: int) -> list[int]:
    """The last ``n_levels`` entries of a coarse-to-fine filter list (fewer levels on small meshes)."""
    f = [int(x) for x in filters]
    if len(f) < n_levels:
        f = [f[0]] * (n_levels - len(f)) + f
    return f[len(f) - n_levels:]


class SpiralEncoder(nn.Module):
    """Spiral convolution + ELU at every level, down-sampling between levels.

    Returns the features of every level (fine to coarse); ``filters[i]`` is level ``i``'s width.
    """

    def __init__(self, hierarchy: MeshHierarchy, in_channels: int, filters: Seq[int]) -> None:
        super().__init__()
        n = hierarchy.num_levels
        self.filters = [int(f) for f in filters][:n]
        if len(self.filters) < n:
            self.filters += [self.filters[-1]] * (n - len(self.filters))
        chans = [in_channels] + self.filters
        self.convs = nn.ModuleList(SpiralConv(chans[i], chans[i + 1], hierarchy.spirals[i]) for i in range(n))
        self.down = nn.ModuleList(Resample(d) for d in hierarchy.down)
        self.act = nn.ELU(inplace=True)  # on each convolution's fresh output

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = self.down[i - 1](x)
            x = self.act(conv(x))
            feats.append(x)
        return feats


class SpiralGenerator(nn.Module):
    """The Neural3DMM / S2D decoder: linear layer to the coarsest level, then per level an
    up-sampling and a spiral convolution with ELU, and a last spiral convolution to 3 channels.

    ``filters`` is coarse-to-fine (S2D: [128, 64, 32, 32, 16]); with fewer mesh levels the last
    entries are used.
    """

    def __init__(self, hierarchy: MeshHierarchy, in_features: int, filters: Seq[int],
                 out_channels: int = 3) -> None:
        super().__init__()
        n = hierarchy.num_levels
        self.n_levels = n
        self.sizes = hierarchy.sizes
        self.filters = level_filters(filters, n)
        self.fc = Linear(in_features, self.sizes[-1] * self.filters[0])
        self.up = nn.ModuleList(Resample(u) for u in hierarchy.up)  # up[i]: level i+1 -> i
        # step k up-samples to level n-2-k and maps filters[k] -> filters[k+1]
        self.convs = nn.ModuleList(
            SpiralConv(self.filters[k], self.filters[k + 1], hierarchy.spirals[n - 2 - k]) for k in range(n - 1))
        self.out = SpiralConv(self.filters[-1], out_channels, hierarchy.spirals[0])
        self.act = nn.ELU(inplace=True)  # on each convolution's fresh output

    def coarse(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z).view(z.shape[0], self.sizes[-1], self.filters[0])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.coarse(z)
        for k in range(self.n_levels - 1):
            x = self.act(self.convs[k](self.up[self.n_levels - 2 - k](x)))
        return self.out(x)


def decode_pieces(batch: int, frames: int, chunk: int, workers: int) -> list[tuple[int, int, int]]:
    """``(sequence, first frame, end frame)`` pieces of a ``[batch, frames]`` decode, in order.

    Every sequence is cut into equal pieces of at most ``chunk`` frames, and into a multiple of
    ``workers / gcd(batch, workers)`` pieces so that ``workers`` threads get equal shares (one
    30-frame sequence on 2 workers: 2 x 15 frames; 4 sequences on 2 workers: whole sequences).
    """
    if frames <= 0:
        return []
    split = workers // math.gcd(batch, workers)
    parts = split * math.ceil(math.ceil(frames / max(1, chunk)) / split)
    bounds = np.linspace(0, frames, min(parts, frames) + 1).round().astype(int)
    return [(i, int(s), int(e)) for i in range(batch) for s, e in zip(bounds[:-1], bounds[1:])]


def run_pieces(fn: Callable[[Any], None], pieces: Seq[Any], workers: int) -> None:
    """``fn(p)`` for every piece, on ``workers`` threads of one intra-op torch thread each.

    On a CPU one small operator per intra-op parallel region scales poorly (each region is a
    barrier); whole pieces run concurrently instead (torch releases the GIL inside operators).
    With one worker or one piece this is a plain loop. The intra-op thread count is restored
    afterwards; the caller's grad mode holds in the workers; the first exception raised by ``fn``
    propagates.
    """
    workers = min(int(workers), len(pieces))
    if workers <= 1:
        for p in pieces:
            fn(p)
        return
    before, grad = torch.get_num_threads(), torch.is_grad_enabled()

    def in_worker(p: Any) -> None:
        with torch.set_grad_enabled(grad):  # grad mode is per thread: the caller's holds in the workers
            fn(p)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(in_worker, pieces):
                pass
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- decoder base
class SpiralMeshDecoder(Decoder):
    """Base of the spiral decoders: hierarchy, normalisation, training loop, decoding, persistence.

    Subclasses set ``output`` ("displacement": the network predicts ``Delta M`` added to the
    neutral; "mesh": the whole normalised mesh), implement :meth:`build_network` and may override
    :meth:`arch`.
    """

    output: ClassVar[str] = "displacement"
    #: frames decoded per forward pass
    decode_chunk: ClassVar[int] = 64

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.net: nn.Module | None = None
        self.hierarchy: MeshHierarchy | None = None
        self.norm: Normaliser | None = None
        self.device = "cpu"

    # -- architecture -------------------------------------------------------------------
    def arch(self, fs: FrameSet) -> dict[str, Any]:
        """JSON-able architecture description stored in the checkpoint's meta."""
        return {"num_landmarks": int(fs.landmarks.shape[1])}

    @abstractmethod
    def build_network(self, hierarchy: MeshHierarchy, arch: dict[str, Any]) -> nn.Module:
        """The network for this hierarchy and architecture."""

    # -- training -----------------------------------------------------------------------
    def _hierarchy(self, topology_hash: str, template: np.ndarray, faces: np.ndarray) -> MeshHierarchy:
        o = self.options
        return cached_hierarchy(topology_hash, template, faces, o["downsampling"], o["spiral_steps"],
                                o["spiral_dilation"], o["min_level_vertices"])

    def _target(self, frames: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        assert norm is not None
        if self.output == "mesh":
            return norm.encode("mesh", frames)
        return norm.encode("disp", frames - neutral)

    def _to_mesh(self, out: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        assert norm is not None
        if self.output == "mesh":
            return norm.decode("mesh", out)
        return neutral + norm.decode("disp", out)

    def fit(self, data: Dataset, budget: Budget, seed: int = 0, device: str = "cpu",
            workdir: Path | None = None, progress: bool = True) -> dict[str, Any]:
        hp = budget.pick(self.budgets)
        t0 = time.perf_counter()
        fs = collect_frames(data, hp.get("max_frames"))
        self.topology, self.labels, self.device = data.topology, list(data.labels), device
        self.hierarchy = self._hierarchy(data.topology.hash, fs.neutrals.mean(0), data.topology.faces)
        self.norm = fit_decoder_normaliser(fs, self.options.get("loss_weights", "uniform"))
        arch = self.arch(fs)
        seed_everything(seed)
        self.net = self.build_network(self.hierarchy, arch).to(device)
        self._arch = arch
        norm = self.norm.to(device)
        self.norm = norm
        data_t = self.training_tensors(fs, device)
        opt = torch.optim.Adam(self.net.parameters(), lr=hp["lr"], weight_decay=hp.get("weight_decay", 0.0))
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=hp["lr_decay"])
        batch = int(hp["batch_size"])
        n = len(fs.frames)
        steps_cap = hp.get("max_steps_per_epoch")
        cfg = stable_hash({"config": self.config, "hp": hp, "data": data.fingerprint, "seed": seed,
                           "frames": n})
        loop = TrainLoop(self.name, {"net": self.net, "opt": opt, "sched": sched}, hp["epochs"], seed, cfg,
                         workdir=workdir, progress=progress)
        net = self.net

        def epoch(_: int, rng: np.random.Generator) -> dict[str, float]:
            net.train()
            perm = torch.as_tensor(rng.permutation(n), device=device)
            n_steps = math.ceil(n / batch)
            if steps_cap:
                n_steps = min(n_steps, int(steps_cap))
            total = sum(self.training_step(opt, data_t, perm[k * batch:(k + 1) * batch]) for k in range(n_steps))
            sched.step()
            scale = 1.0 if self.output == "mesh" else float(norm.stat("disp_std"))
            return {"l1": total / max(1, n_steps) * scale}

        history = loop.run(epoch)
        net.eval()
        self.train_report = loop.report(seconds=time.perf_counter() - t0, frames=n, levels=self.hierarchy.sizes,
                                        loss_unit="mm" if self.output != "mesh" else "normalised",
                                        first=history[0] if history else {})
        return self.train_report

    def training_tensors(self, fs: FrameSet, device: str) -> dict[str, torch.Tensor]:
        """The training frames as tensors on ``device`` (what :meth:`training_step` indexes)."""
        return {"frames": torch.as_tensor(fs.frames, device=device),
                "landmarks": torch.as_tensor(fs.landmarks, device=device),
                "ident": torch.as_tensor(fs.ident, device=device),
                "neutrals": torch.as_tensor(fs.neutrals, device=device),
                "neutral_landmarks": torch.as_tensor(fs.neutral_landmarks, device=device)}

    def training_step(self, opt: torch.optim.Optimizer, data: dict[str, torch.Tensor], idx: torch.Tensor) -> float:
        """One optimisation step on frames ``idx``; returns the (weighted) L1 loss in network units."""
        net, norm = self.net, self.norm
        assert net is not None and norm is not None
        uniq, inv = torch.unique(data["ident"][idx], return_inverse=True)
        neutrals = data["neutrals"][uniq]
        dl, l0, m0 = normalised_inputs(norm, data["landmarks"][idx], data["neutral_landmarks"][uniq], neutrals, inv)
        out = net(dl, l0, m0, inv)
        target = self._target(data["frames"][idx], neutrals[inv])
        loss = ((out - target).abs() * norm.stat("vertex_weights").view(1, -1, 1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    # -- decoding -----------------------------------------------------------------------
    def decode(self, neutral_mesh: np.ndarray, neutral_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Meshes ``[B, T, V, 3]`` (mm) for landmark sequences ``[B, T, L, 3]``.

        On CPU the frames are cut into pieces that ``torch.get_num_threads()`` worker threads of one
        intra-op thread each decode concurrently (:func:`decode_pieces`, :func:`run_pieces`), at most
        ``decode_chunk`` frames in flight in all; elsewhere one piece of ``decode_chunk`` frames at a time.
        """
        self.check_decode_inputs(neutral_mesh, neutral_landmarks, landmarks)
        assert self.net is not None and self.norm is not None
        net, norm, dev = self.net, self.norm, self.device
        net.eval()
        b, t = landmarks.shape[:2]
        out = np.empty((b, t, self.topology.num_vertices, 3), dtype=np.float32)  # type: ignore[union-attr]
        workers = torch.get_num_threads() if torch.device(dev).type == "cpu" else 1

        def piece(p: tuple[int, int, int]) -> None:
            i, s, e = p
            m0_mm = torch.tensor(np.asarray(neutral_mesh[i:i + 1], np.float32), device=dev)
            l0_mm = torch.tensor(np.asarray(neutral_landmarks[i:i + 1], np.float32), device=dev)
            chunk = torch.tensor(np.asarray(landmarks[i, s:e], np.float32), device=dev)
            ident = torch.zeros(e - s, dtype=torch.long, device=dev)
            dl, l0, m0 = normalised_inputs(norm, chunk, l0_mm, m0_mm, ident)
            out[i, s:e] = self._to_mesh(net(dl, l0, m0, ident), m0_mm).cpu().numpy()

        with torch.no_grad():  # run_pieces carries it into its workers
            run_pieces(piece, decode_pieces(b, t, max(1, self.decode_chunk // workers), workers), workers)
        return out

    # -- persistence --------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        assert self.net is not None and self.hierarchy is not None and self.norm is not None
        return {**prefixed("net", self.net.state_dict()), **prefixed("hier", self.hierarchy.to_arrays()),
                **prefixed("norm", self.norm.state_dict())}

    def state_meta(self) -> dict[str, Any]:
        return {"arch": self._arch, "levels": self.hierarchy.sizes if self.hierarchy else []}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device: str = "cpu") -> None:
        self.hierarchy = MeshHierarchy.from_arrays(
            {k: v.numpy() for k, v in unprefixed("hier", tensors).items()})
        self.norm = Normaliser.from_state(unprefixed("norm", tensors)).to(device)
        self._arch = dict(meta["arch"])
        self.device = device
        net = self.build_network(self.hierarchy, self._arch)
        net.load_state_dict(unprefixed("net", tensors))
        self.net = net.to(device).eval()
