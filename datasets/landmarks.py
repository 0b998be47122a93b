"""FLAME landmark embeddings: read them safely and check them against a mesh topology.

A landmark embedding places each landmark on a triangle: ``face_idx[l]`` and barycentric weights
``bary[l]`` (see :class:`~fc4dfs.datasets.base.Topology`). Accepted files:

* FLAME's ``flame_static_embedding.pkl`` (51 landmarks: ``lmk_face_idx``, ``lmk_b_coords``). It is
  a pickle, read by a restricted unpickler that reconstructs numeric arrays and nothing else, so a
  tampered file cannot run code. When ``flame_dynamic_embedding.npy`` lies next to it (FLAME ships
  both), its 17 contour landmarks are prepended, giving the usual 68 (iBUG order: contour first).
* FLAME's ``flame_dynamic_embedding.npy`` (a pickled dict of ``[79, 17]`` face indices and
  ``[79, 17, 3]`` weights, one row per head yaw angle). The contour is taken at yaw 0, which is
  row 0 (FLAME/RingNet/DECA index non-negative yaw ``a`` degrees as row ``a``).
* DECA-style ``landmark_embedding.npy`` holding ``full_lmk_faces_idx``/``full_lmk_bary_coords``
  (68), or ``static_*``/``dynamic_*`` pairs (combined as above).
* A plain ``.npz`` with a face-index array (``face_idx``, ``lmk_face_idx`` or ``lmk_faces_idx``)
  and a weight array (``bary``, ``bary_coords``, ``lmk_b_coords`` or ``lmk_bary_coords``), or a
  plain ``.npy`` ``[L, 4]`` array of rows (face index, w0, w1, w2).

Several files may be given (a list, or one string separated by commas); a static and a dynamic
part combine into contour + static. The role of a part is decided by its landmark count, not by its
key names: 51 landmarks are FLAME's static part (completed by a ``flame_dynamic_embedding.npy``
sibling), 17 the contour, and any other count (68, e.g. TF_FLAME's ``flame_static_embedding_68.pkl``)
is complete on its own, so a sibling is then ignored.

Pickles (``.pkl``, object ``.npy``) are read by :func:`safe_unpickle`, which rebuilds numpy arrays
(pickle protocols 0-5) and torch tensors (as numpy arrays, e.g. the ``dynamic_*`` entries of DECA's
``landmark_embedding.npy``) and refuses every other object (chumpy, code) without running it.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from fc4dfs.datasets.base import Topology, TopologyMismatchError
from fc4dfs.plugins.errors import ComponentError

LANDMARKS_ENV = "FC4DFS_FLAME_LANDMARKS"
FLAME_URL = "https://flame.is.tue.mpg.de"
DYNAMIC_SIBLING = "flame_dynamic_embedding.npy"
#: the row of FLAME's dynamic (yaw-dependent) contour embedding used for a frontal face
CONTOUR_YAW0_ROW = 0
#: FLAME's landmark counts: 51 static (inner face) + 17 contour (dynamic) = the usual 68 (iBUG)
FLAME_STATIC_COUNT, FLAME_CONTOUR_COUNT = 51, 17

_IDX_KEYS = ("face_idx", "faces_idx", "lmk_face_idx", "lmk_faces_idx")
_BARY_KEYS = ("bary", "bary_coords", "lmk_b_coords", "lmk_bary_coords", "b_coords")


class LandmarkEmbeddingError(ComponentError):
    """A landmark embedding file is missing, unreadable or malformed (the message names it)."""


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Landmarks as faces + barycentric weights; ``source`` names the file(s) they came from."""

    face_idx: np.ndarray  # [L] int64
    bary: np.ndarray  # [L, 3] float32
    source: str = ""

    @property
    def num_landmarks(self) -> int:
        return len(self.face_idx)

    def validate(self, faces: np.ndarray, num_vertices: int) -> None:
        """Raise :class:`TopologyMismatchError` naming the file unless the embedding fits the mesh."""
        nf = len(faces)
        if self.num_landmarks == 0:
            raise TopologyMismatchError(f"landmark embedding {self.source} holds no landmarks")
        if self.face_idx.min() < 0 or self.face_idx.max() >= nf:
            raise TopologyMismatchError(
                f"landmark embedding {self.source} names face {int(self.face_idx.max())} but the dataset's "
                f"topology has {nf} faces and {num_vertices} vertices: the embedding is for another mesh "
                "(FLAME has 9,976 faces / 5,023 vertices)")
        if not np.isfinite(self.bary).all() or (self.bary < -1e-4).any():
            raise TopologyMismatchError(f"landmark embedding {self.source}: barycentric weights must be finite "
                                        "and non-negative")
        sums = self.bary.sum(1)
        if not np.allclose(sums, 1.0, atol=1e-3):
            worst = int(np.argmax(np.abs(sums - 1)))
            raise TopologyMismatchError(f"landmark embedding {self.source}: barycentric weights of landmark "
                                        f"{worst} sum to {sums[worst]:.4f}, not 1")

    def topology(self, faces: np.ndarray, num_vertices: int, name: str = "") -> Topology:
        """The :class:`Topology` of ``faces`` with these landmarks (validated first)."""
        self.validate(faces, num_vertices)
        bary = self.bary / self.bary.sum(1, keepdims=True)
        return Topology(faces, num_vertices, self.face_idx, bary, name=name)


# --------------------------------------------------------------------------- safe unpickling
def _numpy_reconstruct() -> Any:
    return np.array(0).__reduce__()[0]


def _numpy_scalar() -> Any:
    return np.float64(0).__reduce__()[0]


def _latin1_encode(obj: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise _Refused(f"refusing codec {_escaped(encoding)!r} in a pickle")
    return obj.encode("latin1", errors)


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    """numpy's protocol-5 array rebuild (``numpy._core.numeric._frombuffer``), for numeric dtypes only."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise _Refused("refusing an object array in a pickle")
    if order not in ("C", "F"):
        raise _Refused(f"refusing array order {_escaped(str(order))!r} in a pickle")
    return np.frombuffer(memoryview(buf).cast("B"), dtype=dtype).reshape(shape, order=order).copy()


#: element type of each of torch's typed storages (the names ``torch.save`` writes)
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
#: first record of torch's legacy (non-zip) serialisation, which ``torch.storage._load_from_bytes`` reads
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass(frozen=True)
class _TorchStorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        kind = _TORCH_STORAGE_DTYPES[self.name]
        return np.dtype(np.uint16 if kind == "bfloat16" else kind)

    def to_numpy(self, raw: np.ndarray) -> np.ndarray:
        if _TORCH_STORAGE_DTYPES[self.name] == "bfloat16":  # upper half of a float32
            return (raw.astype(np.uint32) << 16).view(np.float32)
        return raw


class _TorchStorage:
    """A torch storage decoded as a 1-D numpy array (filled once its bytes have been read)."""

    def __init__(self, kind: _TorchStorageType, numel: int) -> None:
        self.kind, self.numel = kind, numel
        self.data: np.ndarray | None = None


def _torch_rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> np.ndarray:
    """``torch._utils._rebuild_tensor[_v2]`` as a numpy copy of the strided view (bounds checked)."""
    if not isinstance(storage, _TorchStorage) or storage.data is None:
        raise _Refused("refusing a torch tensor whose storage is not plain data")
    data = storage.data
    try:
        offset, shape, strides = int(storage_offset), tuple(int(n) for n in size), tuple(int(n) for n in stride)
    except (TypeError, ValueError):
        raise _Refused("refusing a torch tensor with a non-integer size or stride") from None
    if len(shape) != len(strides) or offset < 0 or min(shape + strides, default=0) < 0:
        raise _Refused(f"refusing a torch tensor of size {shape}, stride {strides}, offset {offset}")
    if 0 in shape:
        return np.zeros(shape, data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(shape, strides))
    if last >= len(data):
        raise _Refused(f"torch tensor of size {shape} reaches element {last} of a storage of {len(data)}")
    view = np.lib.stride_tricks.as_strided(data[offset:], shape, [s * data.itemsize for s in strides],
                                           writeable=False)
    return np.array(view)


class _Refused(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list."""


def _escaped(text: str) -> str:
    """``text`` with control characters (a CRLF file's ``\\r``) written as escapes, for one-line messages."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class _DataUnpickler(pickle.Unpickler):
    """Unpickles containers, numbers, strings, numpy arrays and torch tensors (as numpy); refuses any other global.

    Each allowed global is replaced by a function of this module that only rebuilds data, so nothing
    named by the file is imported or executed: numpy's ``_reconstruct``/``scalar`` (protocols 0-4) and
    ``_frombuffer`` (protocol 5), ``collections.OrderedDict``, and torch's ``_rebuild_tensor[_v2]``
    with ``torch.storage._load_from_bytes``, whose bytes (torch's legacy serialisation: magic number,
    protocol, system info, a storage pickle with persistent ids, storage keys, raw element data) are
    decoded here into a numpy array of the storage's dtype.
    """

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        self.storages: dict[str, _TorchStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        make = _ALLOWED.get((module, name))
        if make is None and "\r" in module + name:
            raise pickle.UnpicklingError(f"global '{_escaped(module)}.{_escaped(name)}' holds a carriage return")
        if make is None:
            raise _Refused(
                f"{self.source}: refusing to load '{_escaped(module)}.{_escaped(name)}' from a pickle (only numeric "
                "arrays, numpy's or torch's, are allowed in a landmark embedding)")
        return make(self)

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, numel[, view metadata]) in torch's legacy format
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _TorchStorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise _Refused(f"{self.source}: refusing a persistent id in a pickle that is not a torch storage")
        if len(pid) == 6 and pid[5] is not None:
            raise _Refused(f"{self.source}: refusing a torch storage view (re-save the tensor with .clone())")
        return self.storages.setdefault(pid[2], _TorchStorage(pid[1], pid[4]))

    def load_torch_storage(self, data: bytes) -> _TorchStorage:
        """Decode the bytes given to ``torch.storage._load_from_bytes`` (see the class docstring)."""
        if not isinstance(data, (bytes, bytearray)):
            raise _Refused(f"{self.source}: a torch storage record is not bytes")
        f = io.BytesIO(data)
        inner = _DataUnpickler(f, self.source)
        if inner.load() != _TORCH_LEGACY_MAGIC or inner.load() != 1001:
            raise _Refused(f"{self.source}: a torch storage record has an unknown format")
        info = inner.load()
        order = "<" if not isinstance(info, dict) or info.get("little_endian", True) else ">"
        inner = _DataUnpickler(f, self.source)
        storage = inner.load()
        keys = _DataUnpickler(f, self.source).load()
        if not isinstance(storage, _TorchStorage) or not isinstance(keys, list):
            raise _Refused(f"{self.source}: a torch storage record does not hold one storage")
        for key in keys:
            ref = inner.storages.get(key)
            if ref is None:
                raise _Refused(f"{self.source}: a torch storage record names an unknown storage")
            numel = int.from_bytes(f.read(8), "little" if order == "<" else "big")
            dtype = ref.kind.dtype.newbyteorder(order)
            raw = f.read(numel * dtype.itemsize)
            if numel != ref.numel or len(raw) != numel * dtype.itemsize:
                raise _Refused(f"{self.source}: a torch storage record is truncated")
            ref.data = ref.kind.to_numpy(np.frombuffer(raw, dtype).astype(dtype.newbyteorder("=")))
        if storage.data is None:
            raise _Refused(f"{self.source}: a torch storage record holds no data")
        return storage


_NUMPY_CORE = ("numpy.core", "numpy._core")
_ALLOWED: dict[tuple[str, str], Any] = {
    **{(f"{m}.multiarray", "_reconstruct"): lambda u: _numpy_reconstruct() for m in _NUMPY_CORE},
    **{(f"{m}.multiarray", "scalar"): lambda u: _numpy_scalar() for m in _NUMPY_CORE},
    **{(f"{m}.numeric", "_frombuffer"): lambda u: _numpy_frombuffer for m in _NUMPY_CORE},
    ("numpy", "ndarray"): lambda u: np.ndarray,
    ("numpy", "dtype"): lambda u: np.dtype,
    ("_codecs", "encode"): lambda u: _latin1_encode,
    ("builtins", "bytearray"): lambda u: bytearray,
    ("collections", "OrderedDict"): lambda u: OrderedDict,
    ("torch._utils", "_rebuild_tensor"): lambda u: _torch_rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): lambda u: _torch_rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): lambda u: u.load_torch_storage,
    **{("torch", name): (lambda name: lambda u: _TorchStorageType(name))(name) for name in _TORCH_STORAGE_DTYPES},
}


def safe_unpickle(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` keeping only plain data: containers, numbers, strings, numpy arrays, and torch
    tensors, which come back as numpy arrays (see :class:`_DataUnpickler`). Never imports or runs code
    named by the file.

    Raises :class:`LandmarkEmbeddingError` naming ``source`` for any other global or a malformed pickle.
    """
    try:
        return _DataUnpickler(io.BytesIO(data), source).load()
    except _Refused as e:
        message = str(e)
        raise LandmarkEmbeddingError(message if message.startswith(f"{source}: ") else f"{source}: {message}") from None
    except Exception as e:  # noqa: BLE001 - any failure of a malformed pickle is a bad file
        hint = ("; its line endings look converted to CRLF (re-download it, or fetch it with git's autocrlf off)"
                if b"\r\n" in data[:4096] else "")
        raise LandmarkEmbeddingError(f"{source}: not a readable pickle ({type(e).__name__}: {_escaped(str(e))})"
                                     f"{hint}") from None


def _load_npy(path: Path) -> Any:
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _, _, dtype = read_header(f)
        except Exception as e:  # noqa: BLE001
            raise LandmarkEmbeddingError(f"{path}: not a readable .npy file ({e})") from None
        if dtype.hasobject:
            # an object array (np.save of a dict): the payload is a pickle; read it restrictedly
            arr = safe_unpickle(f.read(), str(path))
            return arr.item() if isinstance(arr, np.ndarray) and arr.shape == () else arr
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise LandmarkEmbeddingError(f"{path}: not a readable .npy file ({e})") from None


def _read_any(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001
            raise LandmarkEmbeddingError(f"{path}: not a readable .npz of plain arrays ({e})") from None
    if suffix == ".npy":
        return _load_npy(path)
    if suffix in (".pkl", ".pickle"):
        return safe_unpickle(path.read_bytes(), str(path))
    raise LandmarkEmbeddingError(f"{path}: unknown landmark embedding format {suffix!r}; use FLAME's .pkl/.npy "
                                 "or a .npz/.npy of (face index, barycentric) pairs")


# --------------------------------------------------------------------------- interpreting contents
@dataclass(frozen=True)
class _Part:
    role: str  # full | static | dynamic
    face_idx: np.ndarray
    bary: np.ndarray


def _pick(d: dict, keys: Iterable[str]) -> Any:
    for k in keys:
        if k in d:
            return d[k]
    return None


def _as_pair(idx: Any, bary: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        i = np.asarray(idx)
        b = np.asarray(bary, dtype=np.float64)
    except Exception as e:  # noqa: BLE001
        raise LandmarkEmbeddingError(f"{source}: landmark arrays are not numeric ({e})") from None
    if i.dtype.kind not in "iuf" or (i.dtype.kind == "f" and not np.array_equal(i, np.round(i))):
        raise LandmarkEmbeddingError(f"{source}: landmark face indices must be integers, got {i.dtype}")
    return i.astype(np.int64), b


def _parts_of(obj: Any, source: str) -> list[_Part]:
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        if obj.ndim != 2 or obj.shape[1] != 4:
            raise LandmarkEmbeddingError(f"{source}: a plain landmark array must be [L, 4] rows of (face index, "
                                         f"w0, w1, w2), got shape {obj.shape}")
        i, b = _as_pair(obj[:, 0], obj[:, 1:], source)
        return [_Part("full", i, b)]
    if not isinstance(obj, dict):
        raise LandmarkEmbeddingError(f"{source}: expected a dict of landmark arrays, got {type(obj).__name__}")
    if "full_lmk_faces_idx" in obj and "full_lmk_bary_coords" in obj:
        i, b = _as_pair(obj["full_lmk_faces_idx"], obj["full_lmk_bary_coords"], source)
        return [_Part("full", i.reshape(-1), b.reshape(-1, 3))]
    parts: list[_Part] = []
    if "static_lmk_faces_idx" in obj and "static_lmk_bary_coords" in obj:
        i, b = _as_pair(obj["static_lmk_faces_idx"], obj["static_lmk_bary_coords"], source)
        parts.append(_Part(_role_by_count(i.size), i.reshape(-1), b.reshape(-1, 3)))
    if "dynamic_lmk_faces_idx" in obj and "dynamic_lmk_bary_coords" in obj:
        i, b = _as_pair(obj["dynamic_lmk_faces_idx"], obj["dynamic_lmk_bary_coords"], source)
        parts.append(_dynamic(i, b, source))
    if parts:
        return parts
    idx, bary = _pick(obj, _IDX_KEYS), _pick(obj, _BARY_KEYS)
    if idx is None or bary is None:
        raise LandmarkEmbeddingError(f"{source}: no landmark arrays found (keys: {sorted(obj)}); expected e.g. "
                                     "'lmk_face_idx' and 'lmk_b_coords'")
    i, b = _as_pair(idx, bary, source)
    if i.ndim == 2 and b.ndim == 3:
        return [_dynamic(i, b, source)]
    if i.ndim != 1 or b.ndim != 2:
        raise LandmarkEmbeddingError(f"{source}: landmark arrays have shapes {i.shape} and {b.shape}; expected "
                                     "[L] and [L, 3]")
    return [_Part(_role_by_count(len(i)), i, b)]


def _role_by_count(n: int) -> str:
    """FLAME's 51 inner-face landmarks are the static part and its 17 contour landmarks the dynamic part;
    any other count (68 = both, or a custom set) is a complete embedding on its own."""
    return {FLAME_STATIC_COUNT: "static", FLAME_CONTOUR_COUNT: "dynamic"}.get(n, "full")


def _dynamic(i: np.ndarray, b: np.ndarray, source: str) -> _Part:
    if i.ndim != 2 or b.ndim != 3 or b.shape[:2] != i.shape or b.shape[2] != 3:
        raise LandmarkEmbeddingError(f"{source}: dynamic embedding must be [angles, L] and [angles, L, 3], got "
                                     f"{i.shape} and {b.shape}")
    return _Part("dynamic", i[CONTOUR_YAW0_ROW], b[CONTOUR_YAW0_ROW])


def _split_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        text = os.fspath(paths)
        return [Path(p.strip()).expanduser() for p in text.split(",") if p.strip()]
    return [Path(os.fspath(p)).expanduser() for p in paths]


def load_landmark_embedding(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> LandmarkEmbedding:
    """Read a landmark embedding from one or several files (see the module docstring)."""
    files = _split_paths(paths)
    if not files:
        raise LandmarkEmbeddingError("no landmark embedding file given")
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"landmark embedding file {p} does not exist (FLAME's "
                                    f"flame_static_embedding.pkl comes with FLAME: {FLAME_URL})")
    parts: list[_Part] = []
    for p in files:
        parts += _parts_of(_read_any(p), str(p))
    roles = [q.role for q in parts]
    # the role of a part is decided by its landmark count (``_role_by_count``), never by key names, so a
    # complete 68-landmark file beside FLAME's dynamic file stays 68
    if roles == ["static"] and len(files) == 1 and (files[0].parent / DYNAMIC_SIBLING).is_file():
        sib = files[0].parent / DYNAMIC_SIBLING
        parts += _parts_of(_read_any(sib), str(sib))
        files.append(sib)
        roles = [q.role for q in parts]
    source = ", ".join(str(p) for p in files)
    if sorted(roles) == ["dynamic", "static"]:
        dyn, sta = (parts[0], parts[1]) if roles[0] == "dynamic" else (parts[1], parts[0])
        idx = np.concatenate([dyn.face_idx, sta.face_idx])
        bary = np.concatenate([dyn.bary, sta.bary])
    elif len(parts) == 1:
        idx, bary = parts[0].face_idx, parts[0].bary
        if parts[0].role == "static":
            warnings.warn(f"{source}: only FLAME's 51 static landmarks (no contour): put {DYNAMIC_SIBLING} next "
                          "to it or pass both files for the usual 68", stacklevel=2)
        elif parts[0].role == "dynamic":
            warnings.warn(f"{source}: only the {FLAME_CONTOUR_COUNT} contour landmarks of the dynamic embedding",
                          stacklevel=2)
    elif "full" in roles:
        full = next(q for q in parts if q.role == "full")
        raise LandmarkEmbeddingError(f"{source}: one file already holds a complete embedding of "
                                     f"{full.face_idx.size} landmarks; give it alone, or one static "
                                     f"({FLAME_STATIC_COUNT}) plus one contour ({FLAME_CONTOUR_COUNT}) part")
    else:
        raise LandmarkEmbeddingError(f"{source}: cannot combine embedding parts {roles}; give one complete "
                                     f"embedding or one static ({FLAME_STATIC_COUNT}) plus one contour "
                                     f"({FLAME_CONTOUR_COUNT}) part")
    if len(idx) != len(bary):
        raise LandmarkEmbeddingError(f"{source}: {len(idx)} face indices but {len(bary)} barycentric rows")
    return LandmarkEmbedding(np.ascontiguousarray(idx, np.int64), np.ascontiguousarray(bary, np.float32), source)


def save_landmark_embedding(path: str | os.PathLike, face_idx: np.ndarray, bary: np.ndarray) -> None:
    """Write an embedding as a plain ``.npz`` (``face_idx``, ``bary``) that :func:`load_landmark_embedding` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, face_idx=np.asarray(face_idx, np.int64), bary=np.asarray(bary, np.float32))
