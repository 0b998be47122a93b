"""Data contracts shared by every part of the suite: Topology, Sequence, Dataset.

Units are millimetres, arrays are float32, shapes are batch-first.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence as Seq

import numpy as np

from fc4dfs.datasets.storage import release_mapped

SequenceKind = Literal["n2e", "n2e2n"]


class TopologyMismatchError(ValueError):
    """Raised when data, a checkpoint or a cache was made for another topology."""


@dataclass(frozen=True, eq=False)
class Topology:
    """Mesh connectivity plus the landmark embedding.

    Landmarks are a barycentric embedding on faces: landmark ``l`` is
    ``sum_k bary[l, k] * vertices[faces[face_idx[l], k]]``. A vertex-index embedding is the
    special case built by :meth:`from_vertex_landmarks`.
    """

    faces: np.ndarray  # [F, 3] int64
    num_vertices: int
    lmk_face_idx: np.ndarray  # [L] int64
    lmk_bary: np.ndarray  # [L, 3] float32
    name: str = ""

    def __post_init__(self) -> None:
        faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        fidx = np.ascontiguousarray(self.lmk_face_idx, dtype=np.int64).reshape(-1)
        bary = np.ascontiguousarray(self.lmk_bary, dtype=np.float32).reshape(-1, 3)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be [F, 3], got {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= self.num_vertices):
            raise ValueError(f"faces index outside [0, {self.num_vertices})")
        if len(fidx) != len(bary):
            raise ValueError("landmark face indices and barycentric weights differ in length")
        if len(fidx) and (fidx.min() < 0 or fidx.max() >= len(faces)):
            raise TopologyMismatchError(
                f"landmark embedding names face {int(fidx.max())} but the topology has {len(faces)} faces")
        if len(bary) and not np.allclose(bary.sum(1), 1.0, atol=1e-4):
            raise TopologyMismatchError("landmark barycentric weights must sum to 1")
        object.__setattr__(self, "faces", faces)
        object.__setattr__(self, "lmk_face_idx", fidx)
        object.__setattr__(self, "lmk_bary", bary)
        object.__setattr__(self, "num_vertices", int(self.num_vertices))

    @classmethod
    def from_vertex_landmarks(cls, faces: np.ndarray, num_vertices: int,
                              landmark_vertices: Seq[int], name: str = "") -> "Topology":
        """Build a topology whose landmarks sit exactly on the given vertices."""
        faces = np.asarray(faces, dtype=np.int64)
        lv = np.asarray(landmark_vertices, dtype=np.int64)
        face_of_vertex = np.full(num_vertices, -1, dtype=np.int64)
        corner_of_vertex = np.zeros(num_vertices, dtype=np.int64)
        for k in range(3):
            unset = face_of_vertex[faces[:, k]] < 0
            face_of_vertex[faces[unset, k]] = np.nonzero(unset)[0]
            corner_of_vertex[faces[unset, k]] = k
        if (face_of_vertex[lv] < 0).any():
            raise ValueError("a landmark vertex belongs to no face")
        bary = np.zeros((len(lv), 3), dtype=np.float32)
        bary[np.arange(len(lv)), corner_of_vertex[lv]] = 1.0
        return cls(faces, num_vertices, face_of_vertex[lv], bary, name)

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @property
    def num_landmarks(self) -> int:
        return len(self.lmk_face_idx)

    @property
    def landmark_vertex_ids(self) -> np.ndarray:
        """[L, 3] vertex ids whose barycentric combination gives each landmark."""
        return self.faces[self.lmk_face_idx]

    @property
    def hash(self) -> str:
        """Content hash of connectivity and landmark embedding (16 hex chars)."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            h = hashlib.sha256()
            h.update(np.int64(self.num_vertices).tobytes())
            h.update(self.faces.tobytes())
            h.update(self.lmk_face_idx.tobytes())
            h.update(np.round(self.lmk_bary.astype(np.float64), 6).tobytes())
            cached = h.hexdigest()[:16]
            object.__setattr__(self, "_hash", cached)
        return cached

    def landmarks(self, vertices):
        """Landmarks ``[..., L, 3]`` of vertices ``[..., V, 3]`` (numpy array or torch tensor)."""
        if vertices.shape[-2] != self.num_vertices:
            raise TopologyMismatchError(
                f"vertices have {vertices.shape[-2]} points but topology {self.hash} has {self.num_vertices}")
        ids = self.landmark_vertex_ids
        if isinstance(vertices, np.ndarray):
            corners = vertices[..., ids, :]  # [..., L, 3(corner), 3]
            return np.einsum("...lkc,lk->...lc", corners, self.lmk_bary).astype(np.float32)
        import torch

        idx = torch.as_tensor(ids, device=vertices.device)
        corners = vertices[..., idx, :]
        bary = torch.as_tensor(self.lmk_bary, device=vertices.device, dtype=vertices.dtype)
        return torch.einsum("...lkc,lk->...lc", corners, bary)

    def check_vertices(self, vertices: np.ndarray, what: str = "vertices") -> None:
        """Raise a clear error unless ``vertices`` is ``[..., V, 3]`` for this topology."""
        if vertices.ndim < 2 or vertices.shape[-1] != 3 or vertices.shape[-2] != self.num_vertices:
            raise TopologyMismatchError(
                f"{what} has shape {tuple(vertices.shape)}; topology {self.hash} expects [..., "
                f"{self.num_vertices}, 3]")

    def check_landmarks(self, landmarks, what: str = "landmarks") -> None:
        """Raise a clear error unless ``landmarks`` is ``[..., L, 3]`` for this topology."""
        if landmarks.ndim < 2 or landmarks.shape[-1] != 3 or landmarks.shape[-2] != self.num_landmarks:
            raise TopologyMismatchError(
                f"{what} has shape {tuple(landmarks.shape)}; topology {self.hash} expects [..., "
                f"{self.num_landmarks}, 3]")


@dataclass(eq=False)
class Sequence:
    """One expression sequence of one identity. Frame 0 is neutral."""

    identity: str
    label: str
    frames: np.ndarray  # [T, V, 3] float32, mm; may be a memory map
    fps: float
    kind: SequenceKind
    topology: Topology
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("n2e", "n2e2n"):
            raise ValueError(f"sequence kind must be 'n2e' or 'n2e2n', got {self.kind!r}")
        self.topology.check_vertices(self.frames, f"frames of {self.identity}/{self.label}")

    @property
    def length(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.length - 1) / float(self.fps)

    @property
    def landmarks(self) -> np.ndarray:
        """[T, L, 3] landmarks through the topology's embedding."""
        return self.topology.landmarks(np.asarray(self.frames, dtype=np.float32))

    @property
    def neutral(self) -> np.ndarray:
        return np.asarray(self.frames[0], dtype=np.float32)

    @property
    def timing(self) -> dict[str, float]:
        """Relative ``onset``/``apex``/``offset``/``rest`` (fractions of the duration).

        The dataset's own when it knows them (``synthetic``: the planned phase boundaries, ``offset``
        being the end of the apex hold, 1.0 for ``n2e``), otherwise measured from the displacement
        curve by the rule of :mod:`fc4dfs.datasets.phases`.
        """
        known = self.meta.get("timing")
        if isinstance(known, dict) and {"onset", "apex"} <= set(known):
            return {"onset": float(known["onset"]), "apex": float(known["apex"]),
                    "offset": float(known.get("release", known.get("offset", 1.0))),
                    "rest": float(known.get("rest", 1.0))}
        from fc4dfs.datasets.phases import measure_timing

        return measure_timing(np.asarray(self.frames, dtype=np.float32))

    @property
    def intensity(self) -> float | None:
        """The expression's intensity as the dataset defines it (``synthetic``: the gain its apex was
        drawn with, about 1), or None when the dataset does not know it; relative intensities of any
        dataset come from :func:`fc4dfs.datasets.phases.relative_intensity`."""
        value = self.meta.get("intensity")
        return float(value) if value is not None else None

    def resampled(self, length: int) -> "Sequence":
        """The same motion resampled to ``length`` frames over the same duration."""
        frames = resample_frames(np.asarray(self.frames, dtype=np.float32), length)
        fps = (length - 1) / self.duration if self.duration > 0 else self.fps
        return Sequence(self.identity, self.label, frames, fps, self.kind, self.topology,
                        {**self.meta, "resampled_from": self.length})


def resample_frames(frames: np.ndarray, length: int) -> np.ndarray:
    """Linearly resample ``[T, ...]`` to ``[length, ...]`` keeping first and last frame."""
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    t_src = frames.shape[0]
    if t_src == length:
        return np.array(frames, dtype=np.float32, copy=True)
    pos = np.linspace(0.0, t_src - 1, length)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t_src - 1)
    w = (pos - lo).astype(np.float32).reshape((-1,) + (1,) * (frames.ndim - 1))
    return ((1 - w) * frames[lo] + w * frames[hi]).astype(np.float32)


class Dataset:
    """A named collection of sequences over one topology, split by identity.

    Subclasses (or callers) provide ``sequences``; everything else derives from them.
    ``fingerprint`` must change whenever the data would.
    """

    name: str = ""
    version: str = "1"

    def __init__(self, name: str, topology: Topology, sequences: list[Sequence],
                 labels: Iterable[str] | None = None, identities: Iterable[str] | None = None,
                 fingerprint: str | None = None, neutrals: dict[str, np.ndarray] | None = None,
                 version: str = "1", descriptions: dict[str, Seq[str]] | None = None) -> None:
        self.name = name
        self.version = version
        self.topology = topology
        self.sequences = list(sequences)
        for s in self.sequences:
            if s.topology.hash != topology.hash:
                raise TopologyMismatchError(
                    f"sequence {s.identity}/{s.label} has topology {s.topology.hash}, dataset {topology.hash}")
        self.labels = list(labels) if labels is not None else sorted({s.label for s in self.sequences})
        ids = list(identities) if identities is not None else _ordered_unique(s.identity for s in self.sequences)
        self.identities = ids
        self._neutrals = dict(neutrals or {})
        self._fingerprint = fingerprint
        self._descriptions = {k: tuple(v) for k, v in (descriptions or {}).items() if v}

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, {len(self.identities)} identities, {len(self.labels)} labels, "
                f"{len(self.sequences)} sequences, topology {self.topology.hash})")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def fingerprint(self) -> str:
        """Content hash of the dataset version (16 hex chars)."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.topology.hash.encode())
            for s in self.sequences:
                h.update(f"{s.identity}|{s.label}|{s.kind}|{s.fps}|{s.length}".encode())
                h.update(np.ascontiguousarray(s.frames[:: max(1, s.length // 4)]).tobytes())
                release_mapped(s.frames)
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def neutral(self, identity: str) -> np.ndarray:
        """The identity's neutral mesh [V, 3] (frame 0 of its first sequence unless given)."""
        if identity in self._neutrals:
            return np.asarray(self._neutrals[identity], dtype=np.float32)
        for s in self.sequences:
            if s.identity == identity:
                return s.neutral
        raise KeyError(f"identity {identity!r} not in dataset {self.name!r}")

    def label_texts(self, label: str) -> tuple[str, ...]:
        """Raw-text descriptions of ``label`` (Zou et al. §5.2): its words first, then synonyms.

        Datasets without a vocabulary describe a label by its words (``mouth_open`` -> "mouth open").
        """
        words = label.replace("_", " ")
        extra = [t for t in self._descriptions.get(label, ()) if t != words]
        return (words, *extra)

    def sequence_texts(self, label: str, kind: SequenceKind) -> tuple[str, ...]:
        """Every description of a sequence: the raw texts and their enriched sentences (§5.2)."""
        raw = self.label_texts(label)
        return raw + tuple(enriched_text(t, kind) for t in raw)

    def label_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"label {label!r} not in dataset {self.name!r} (labels: {', '.join(self.labels)})") from None

    def subset(self, identities: Iterable[str], name_suffix: str = "") -> "Dataset":
        """A view holding only the given identities' sequences (labels kept in full)."""
        keep = list(identities)
        unknown = set(keep) - set(self.identities)
        if unknown:
            raise KeyError(f"identities not in dataset {self.name!r}: {sorted(unknown)}")
        keep_set = set(keep)
        seqs = [s for s in self.sequences if s.identity in keep_set]
        order = [i for i in self.identities if i in keep_set]
        neutrals = {i: v for i, v in self._neutrals.items() if i in keep_set}
        sub = Dataset(self.name + name_suffix, self.topology, seqs, self.labels, order,
                      neutrals=neutrals, version=self.version, descriptions=self._descriptions)
        return sub

    def generator_split(self) -> tuple[list[str], list[str]]:
        """FC-4DFS split: first 3/4 of identities train, last 1/4 test."""
        n = len(self.identities)
        n_train = max(1, min(n - 1, int(round(n * 0.75))))
        return self.identities[:n_train], self.identities[n_train:]

    def folds(self, k: int = 4) -> list[tuple[list[str], list[str]]]:
        """k-fold identity cross-validation: contiguous identity blocks, each the test set once."""
        if k < 2 or k > len(self.identities):
            raise ValueError(f"cannot make {k} folds from {len(self.identities)} identities")
        blocks = np.array_split(np.arange(len(self.identities)), k)
        out = []
        for b in blocks:
            test = [self.identities[i] for i in b]
            train = [i for i in self.identities if i not in set(test)]
            out.append((train, test))
        return out


#: enriched-text templates per sequence kind (Zou et al. §5.2: "from the neutral face to <label>")
ENRICHED_TEMPLATES: dict[str, str] = {
    "n2e": "from the neutral face to {}",
    "n2e2n": "from the neutral face to {} and back to neutral",
}


def enriched_text(phrase: str, kind: SequenceKind) -> str:
    """The enriched-text sentence of a raw description for a sequence of ``kind``."""
    try:
        return ENRICHED_TEMPLATES[kind].format(phrase)
    except KeyError:
        raise ValueError(f"sequence kind must be one of {sorted(ENRICHED_TEMPLATES)}, got {kind!r}") from None


def _ordered_unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        seen.setdefault(it, None)
    return list(seen)
