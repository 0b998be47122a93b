"""Export mesh sequences for animation tools: per-frame PLY/OBJ, one NPZ, glTF 2.0 binary (.glb).

The GLB holds the sequence as a morph-target animation that Blender, three.js and game engines
play: the base mesh is frame 0 and either

* ``morph="frames"`` (default, lossless): one morph target per later frame (target ``k`` is
  ``frame[k+1] - frame[0]``); the animation sets target ``k-1`` to weight 1 at frame ``k``, so
  linear interpolation between keyframes is exactly linear interpolation between frames; or
* ``morph="basis"``: ``n_basis`` principal displacement directions and per-frame coefficients
  (compact for long sequences; exact when ``n_basis`` >= the motion's rank).

Keyframe times are ``k / fps``, so the animation runs at the sequence's frame rate. Positions are
stored in millimetres (the suite's unit); the node carries a 0.001 scale so tools show metres.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Literal, Sequence as Seq

import numpy as np

from fc4dfs.datasets.storage import atomic_write_bytes

FORMATS = ("ply", "obj", "npz", "glb")
MM_TO_M = 0.001

# glTF constants
_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


def write_file(path: str | Path, data: bytes) -> Path:
    """Atomic write with the usual file mode (umask applied): exports are for sharing, not 0600."""
    path = Path(path)
    atomic_write_bytes(path, data)
    os.chmod(path, 0o666 & ~_umask())
    return path


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


# --------------------------------------------------------------------------- validation
def _check_mesh(verts: np.ndarray, faces: np.ndarray, what: str = "vertices") -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(verts, dtype=np.float32)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"{what} must be [V, 3], got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must be [F, 3], got {f.shape}")
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"faces index outside [0, {len(v)})")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} contain NaN or Inf")
    return v, f.astype(np.int64)


def _check_sequence(frames: np.ndarray, faces: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    fr = np.asarray(frames, dtype=np.float32)
    if fr.ndim != 3 or fr.shape[2] != 3 or fr.shape[0] < 1:
        raise ValueError(f"frames must be [T, V, 3] with T >= 1, got {fr.shape}")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _, f = _check_mesh(fr[0], faces, "frame 0")
    if not np.isfinite(fr).all():
        raise ValueError("frames contain NaN or Inf")
    return fr, f


# --------------------------------------------------------------------------- PLY / OBJ
def write_ply(path: str | Path, verts: np.ndarray, faces: np.ndarray) -> Path:
    """Binary little-endian PLY: float vertices, uchar-counted int face lists."""
    v, f = _check_mesh(verts, faces)
    header = (f"ply\nformat binary_little_endian 1.0\ncomment fc4dfs-bench export, units mm\n"
              f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n").encode("ascii")
    face_rec = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face_rec["n"] = 3
    face_rec["idx"] = f
    return write_file(path, header + v.astype("<f4").tobytes() + face_rec.tobytes())


def write_obj(path: str | Path, verts: np.ndarray, faces: np.ndarray, comment: str = "") -> Path:
    """Wavefront OBJ (1-based indices), vertices with 6 decimals (micrometre precision in mm)."""
    v, f = _check_mesh(verts, faces)
    lines = ["# fc4dfs-bench export, units mm"] + [f"# {c}" for c in comment.splitlines() if c]
    body = "\n".join(lines) + "\n"
    vtxt = ("v %.6f %.6f %.6f\n" * len(v)) % tuple(v.astype(np.float64).ravel().tolist())
    ftxt = ("f %d %d %d\n" * len(f)) % tuple((f + 1).ravel().tolist())
    return write_file(path, (body + vtxt + ftxt).encode("ascii"))


def write_frames(out_dir: str | Path, frames: np.ndarray, faces: np.ndarray, fmt: str = "ply",
                 stem: str = "frame") -> list[Path]:
    """One mesh file per frame: ``out_dir/{stem}_{t:04d}.{fmt}`` (fmt: ply or obj)."""
    fr, f = _check_sequence(frames, faces, 1.0)
    writer = {"ply": write_ply, "obj": write_obj}.get(fmt)
    if writer is None:
        raise ValueError(f"per-frame format must be 'ply' or 'obj', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(len(fr) - 1)))
    return [writer(out / f"{stem}_{t:0{width}d}.{fmt}", fr[t], f) for t in range(len(fr))]


# --------------------------------------------------------------------------- NPZ
def write_npz(path: str | Path, frames: np.ndarray, faces: np.ndarray, fps: float,
              landmarks: np.ndarray | None = None, metadata: dict[str, Any] | None = None,
              lmk_face_idx: np.ndarray | None = None, lmk_bary: np.ndarray | None = None) -> Path:
    """One NPZ: ``vertices`` [T, V, 3] float32 mm, ``faces``, ``landmarks`` [T, L, 3], ``fps``,
    ``metadata`` (a JSON string) and, when given, the landmark embedding."""
    fr, f = _check_sequence(frames, faces, fps)
    arrays: dict[str, np.ndarray] = {"vertices": fr, "faces": f.astype(np.int32),
                                     "fps": np.asarray(float(fps), dtype=np.float64),
                                     "metadata": np.asarray(json.dumps(metadata or {}, sort_keys=True))}
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float32)
        if lm.ndim != 3 or lm.shape[0] != fr.shape[0] or lm.shape[2] != 3:
            raise ValueError(f"landmarks must be [T={fr.shape[0]}, L, 3], got {lm.shape}")
        arrays["landmarks"] = lm
    if lmk_face_idx is not None and lmk_bary is not None:
        arrays["lmk_face_idx"] = np.asarray(lmk_face_idx, dtype=np.int64)
        arrays["lmk_bary"] = np.asarray(lmk_bary, dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- glTF
def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``[V, 3]`` of a mesh ``[V, 3]``."""
    v = np.asarray(verts, dtype=np.float64)
    tri = v[faces]  # [F, 3, 3]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(v)
    for k in range(3):
        for c in range(3):
            out[:, c] += np.bincount(faces[:, k], fn[:, c], minlength=len(v))
    norm = np.linalg.norm(out, axis=-1, keepdims=True)
    return (out / np.maximum(norm, 1e-12)).astype(np.float32)


def morph_basis(frames: np.ndarray, n_basis: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_basis`` displacement directions ``[K, V, 3]`` and weights ``[T, K]`` with
    ``frames[t] ~= frames[0] + sum_k weights[t, k] * basis[k]`` (truncated SVD)."""
    t_len, n_v, _ = frames.shape
    disp = (frames - frames[:1]).reshape(t_len, -1).astype(np.float64)
    if n_basis < 1:
        raise ValueError(f"n_basis must be >= 1, got {n_basis}")
    u, s, vt = np.linalg.svd(disp, full_matrices=False)
    k = min(int(n_basis), len(s))
    weights = u[:, :k] * s[:k]
    return vt[:k].reshape(k, n_v, 3).astype(np.float32), weights.astype(np.float32)


class _GlbBuilder:
    """Accumulates buffer views and accessors into one binary buffer."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(self, array: np.ndarray, type_: str, target: int | None = None, minmax: bool = False) -> int:
        arr = np.ascontiguousarray(array)
        comp = _UINT if arr.dtype.kind in "ui" else _FLOAT
        arr = arr.astype("<u4" if comp == _UINT else "<f4")
        while len(self.blob) % 4:
            self.blob.append(0)
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": arr.nbytes}
        if target is not None:
            view["target"] = target
        self.blob += arr.tobytes()
        self.views.append(view)
        ncomp = {"SCALAR": 1, "VEC3": 3}[type_]
        acc: dict[str, Any] = {"bufferView": len(self.views) - 1, "componentType": comp,
                               "count": int(arr.size // ncomp), "type": type_}
        if minmax:
            flat = arr.reshape(-1, ncomp)
            acc["min"] = [float(x) for x in flat.min(0)]
            acc["max"] = [float(x) for x in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def write_glb(path: str | Path, frames: np.ndarray, faces: np.ndarray, fps: float, name: str = "sequence",
              metadata: dict[str, Any] | None = None, morph: Literal["frames", "basis"] = "frames",
              n_basis: int = 16, normals: bool = True, color: Seq[float] = (0.86, 0.74, 0.66)) -> Path:
    """glTF 2.0 binary with the sequence as a morph-target animation at ``fps`` (see module doc)."""
    fr, f = _check_sequence(frames, faces, fps)
    t_len = fr.shape[0]
    base = fr[0]
    if morph == "frames":
        targets = fr[1:] - base[None]
        weights = np.zeros((t_len, t_len - 1), dtype=np.float32)
        weights[np.arange(1, t_len), np.arange(t_len - 1)] = 1.0
        target_names = [f"frame_{t:04d}" for t in range(1, t_len)]
    elif morph == "basis":
        targets, weights = morph_basis(fr, n_basis)
        target_names = [f"basis_{k:02d}" for k in range(len(targets))]
    else:
        raise ValueError(f"morph must be 'frames' or 'basis', got {morph!r}")
    b = _GlbBuilder()
    idx_acc = b.add(f.astype(np.uint32).ravel(), "SCALAR", _ELEMENT_ARRAY_BUFFER)
    attributes = {"POSITION": b.add(base, "VEC3", _ARRAY_BUFFER, minmax=True)}
    n_base = vertex_normals(base, f) if normals else None
    if normals:
        attributes["NORMAL"] = b.add(n_base, "VEC3", _ARRAY_BUFFER)
    gl_targets = []
    for k, d in enumerate(targets):
        tgt = {"POSITION": b.add(d, "VEC3", _ARRAY_BUFFER, minmax=True)}
        if normals and morph == "frames":
            tgt["NORMAL"] = b.add(vertex_normals(fr[k + 1], f) - n_base, "VEC3", _ARRAY_BUFFER)
        gl_targets.append(tgt)
    primitive: dict[str, Any] = {"attributes": attributes, "indices": idx_acc, "mode": 4, "material": 0}
    mesh: dict[str, Any] = {"name": name, "primitives": [primitive]}
    animations = []
    if gl_targets:
        primitive["targets"] = gl_targets
        mesh["weights"] = [float(w) for w in weights[0]]
        mesh["extras"] = {"targetNames": target_names}
        times = np.arange(t_len, dtype=np.float32) / np.float32(fps)
        t_acc = b.add(times, "SCALAR", minmax=True)
        w_acc = b.add(weights.ravel(), "SCALAR")
        animations.append({"name": name, "samplers": [{"input": t_acc, "output": w_acc,
                                                        "interpolation": "LINEAR"}],
                           "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]})
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "fc4dfs-bench",
                  "extras": {"fps": float(fps), "frames": int(t_len), "units": "mm (node scale 0.001 -> m)",
                             "morph": morph, **(metadata or {})}},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0, "scale": [MM_TO_M] * 3}],
        "meshes": [mesh],
        "materials": [{"name": "skin", "doubleSided": True,
                       "pbrMetallicRoughness": {"baseColorFactor": [*map(float, color), 1.0],
                                                "metallicFactor": 0.0, "roughnessFactor": 0.7}}],
        "buffers": [{"byteLength": 0}],
        "bufferViews": b.views,
        "accessors": b.accessors,
    }
    if animations:
        gltf["animations"] = animations
    while len(b.blob) % 4:
        b.blob.append(0)
    gltf["buffers"][0]["byteLength"] = len(b.blob)
    js = json.dumps(gltf, separators=(",", ":"), default=_json_default).encode("utf-8")
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(b.blob)
    data = (struct.pack("<III", _GLB_MAGIC, 2, total) + struct.pack("<II", len(js), _JSON_CHUNK) + js
            + struct.pack("<II", len(b.blob), _BIN_CHUNK) + bytes(b.blob))
    return write_file(path, data)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --------------------------------------------------------------------------- everything at once
def export_sequence(out_dir: str | Path, frames: np.ndarray, faces: np.ndarray, fps: float,
                    landmarks: np.ndarray | None = None, metadata: dict[str, Any] | None = None,
                    formats: Seq[str] = FORMATS, stem: str = "sequence",
                    lmk_face_idx: np.ndarray | None = None, lmk_bary: np.ndarray | None = None,
                    morph: Literal["frames", "basis"] = "frames", n_basis: int = 16) -> dict[str, list[Path]]:
    """Write ``frames`` in every requested format under ``out_dir``; returns ``{format: [files]}``.

    Layout: ``ply/frame_0000.ply ...``, ``obj/frame_0000.obj ...``, ``{stem}.npz``, ``{stem}.glb``.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    if "ply" in formats:
        written["ply"] = write_frames(out / "ply", frames, faces, "ply")
    if "obj" in formats:
        written["obj"] = write_frames(out / "obj", frames, faces, "obj")
    if "npz" in formats:
        written["npz"] = [write_npz(out / f"{stem}.npz", frames, faces, fps, landmarks, metadata,
                                    lmk_face_idx, lmk_bary)]
    if "glb" in formats:
        written["glb"] = [write_glb(out / f"{stem}.glb", frames, faces, fps, name=stem, metadata=metadata,
                                    morph=morph, n_basis=n_basis)]
    return written
