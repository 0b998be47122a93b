"""Export mesh sequences for animation tools: per-frame PLY/OBJ, one NPZ, glTF 2.0 binary (.glb).

The GLB holds the sequence as a morph-target animation that Blender, three.js and game engines
play: the base mesh is frame 0 and either

* ``morph="frames"`` (default, lossless): one morph target per later frame (target ``k`` is
  ``frame[k+1] - frame[0]``); the animation sets target ``k-1`` to weight 1 at frame ``k``, so
  linear interpolation between keyframes is exactly linear interpolation between frames; or
* ``morph="basis"``: ``n_basis`` principal displacement directions and per-frame coefficients
  (compact for long sequences; exact when ``n_basis`` >= the motion's rank).

Keyframe times are ``k / fps``, so the animation runs at the sequence's frame rate. Positions are
stored in the sequence's units (millimetres, the suite's unit, unless ``units`` says otherwise:
a user's own mesh is written back in its own units); the node carries the scale to metres so tools
show metres. :func:`write_morph_glb` writes any base mesh + named morph targets + weight curves
(the blendshape export uses it directly). Texture coordinates (``TexCoords``, OBJ-style: one UV
index per face corner) are written to OBJ as ``vt`` and to glTF as ``TEXCOORD_0``, splitting
vertices at UV seams as glTF requires.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Literal, Sequence as Seq

import numpy as np

from fc4dfs.datasets.storage import atomic_write_bytes

FORMATS = ("ply", "obj", "npz", "glb")
MM_TO_M = 0.001
#: metres per unit of the units a sequence may be written in
METRES_PER_UNIT: dict[str, float] = {"mm": 0.001, "cm": 0.01, "m": 1.0}

# glTF constants
_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


def write_file(path: str | Path, data: bytes) -> Path:
    """Atomic write with the usual file mode (umask applied): exports are for sharing, not 0600."""
    path = Path(path)
    atomic_write_bytes(path, data)
    return path


@dataclass(frozen=True, eq=False)
class TexCoords:
    """Texture coordinates of a mesh, OBJ style: ``uv [W, 2]`` (origin bottom-left, as OBJ ``vt``)
    and ``faces [F, 3]``: the UV index of each face corner (differs from the vertex index at seams)."""

    uv: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        uv = np.asarray(self.uv, dtype=np.float32)
        f = np.asarray(self.faces, dtype=np.int64)
        if uv.ndim != 2 or uv.shape[1] != 2 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"texcoords must be uv [W, 2] and faces [F, 3], got {uv.shape} and {f.shape}")
        if f.size and (f.min() < 0 or f.max() >= len(uv)):
            raise ValueError(f"texcoord faces index outside [0, {len(uv)})")
        object.__setattr__(self, "uv", uv)
        object.__setattr__(self, "faces", f)


def _check_units(units: str) -> float:
    if units not in METRES_PER_UNIT:
        raise ValueError(f"units must be one of {', '.join(METRES_PER_UNIT)}, got {units!r}")
    return METRES_PER_UNIT[units]


def _check_texcoords(tex: TexCoords | None, faces: np.ndarray) -> None:
    if tex is not None and tex.faces.shape != faces.shape:
        raise ValueError(f"texcoords cover {len(tex.faces)} faces, the mesh has {len(faces)}")


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
def write_ply(path: str | Path, verts: np.ndarray, faces: np.ndarray, units: str = "mm") -> Path:
    """Binary little-endian PLY: float vertices, uchar-counted int face lists."""
    v, f = _check_mesh(verts, faces)
    _check_units(units)
    header = (f"ply\nformat binary_little_endian 1.0\ncomment fc4dfs-bench export, units {units}\n"
              f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n").encode("ascii")
    face_rec = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face_rec["n"] = 3
    face_rec["idx"] = f
    return write_file(path, header + v.astype("<f4").tobytes() + face_rec.tobytes())


def write_obj(path: str | Path, verts: np.ndarray, faces: np.ndarray, comment: str = "",
              texcoords: TexCoords | None = None, units: str = "mm") -> Path:
    """Wavefront OBJ (1-based indices), vertices with 6 decimals (micrometre precision in mm);
    with ``texcoords`` also ``vt`` lines and ``f v/vt`` corners."""
    v, f = _check_mesh(verts, faces)
    _check_units(units)
    _check_texcoords(texcoords, f)
    lines = [f"# fc4dfs-bench export, units {units}"] + [f"# {c}" for c in comment.splitlines() if c]
    body = "\n".join(lines) + "\n"
    digits = {"mm": 6, "cm": 7, "m": 9}[units]
    vtxt = (f"v %.{digits}f %.{digits}f %.{digits}f\n" * len(v)) % tuple(v.astype(np.float64).ravel().tolist())
    if texcoords is None:
        ftxt = ("f %d %d %d\n" * len(f)) % tuple((f + 1).ravel().tolist())
    else:
        vt = ("vt %.6f %.6f\n" * len(texcoords.uv)) % tuple(texcoords.uv.astype(np.float64).ravel().tolist())
        corners = np.stack([f + 1, texcoords.faces + 1], axis=-1)  # [F, 3, 2]
        ftxt = vt + ("f %d/%d %d/%d %d/%d\n" * len(f)) % tuple(corners.ravel().tolist())
    return write_file(path, (body + vtxt + ftxt).encode("ascii"))


def write_frames(out_dir: str | Path, frames: np.ndarray, faces: np.ndarray, fmt: str = "ply",
                 stem: str = "frame", texcoords: TexCoords | None = None, units: str = "mm") -> list[Path]:
    """One mesh file per frame: ``out_dir/{stem}_{t:04d}.{fmt}`` (fmt: ply or obj; OBJ keeps ``texcoords``)."""
    fr, f = _check_sequence(frames, faces, 1.0)
    if fmt == "ply":
        def writer(p: Path, v: np.ndarray) -> Path:
            return write_ply(p, v, f, units=units)
    elif fmt == "obj":
        def writer(p: Path, v: np.ndarray) -> Path:
            return write_obj(p, v, f, texcoords=texcoords, units=units)
    else:
        raise ValueError(f"per-frame format must be 'ply' or 'obj', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(len(fr) - 1)))
    return [writer(out / f"{stem}_{t:0{width}d}.{fmt}", fr[t]) for t in range(len(fr))]


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
        ncomp = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[type_]
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
              n_basis: int = 16, normals: bool = True, color: Seq[float] = (0.86, 0.74, 0.66),
              texcoords: TexCoords | None = None, units: str = "mm") -> Path:
    """glTF 2.0 binary with the sequence as a morph-target animation at ``fps`` (see module doc)."""
    fr, f = _check_sequence(frames, faces, fps)
    t_len = fr.shape[0]
    base = fr[0]
    if morph == "frames":
        targets = fr[1:] - base[None]
        weights = np.zeros((t_len, t_len - 1), dtype=np.float32)
        weights[np.arange(1, t_len), np.arange(t_len - 1)] = 1.0
        target_names = [f"frame_{t:04d}" for t in range(1, t_len)]
        target_normals = [vertex_normals(fr[k], f) for k in range(1, t_len)] if normals else None
    elif morph == "basis":
        targets, weights = morph_basis(fr, n_basis)
        target_names = [f"basis_{k:02d}" for k in range(len(targets))]
        target_normals = None
    else:
        raise ValueError(f"morph must be 'frames' or 'basis', got {morph!r}")
    return write_morph_glb(path, base, f, targets, target_names, weights, fps, name=name,
                           metadata={"frames": int(t_len), "morph": morph, **(metadata or {})},
                           normals=normals, target_normals=target_normals, color=color, texcoords=texcoords,
                           units=units)


def write_morph_glb(path: str | Path, base: np.ndarray, faces: np.ndarray, targets: np.ndarray,
                    target_names: Seq[str], weights: np.ndarray, fps: float, name: str = "sequence",
                    metadata: dict[str, Any] | None = None, normals: bool = True,
                    target_normals: Seq[np.ndarray] | None = None, color: Seq[float] = (0.86, 0.74, 0.66),
                    texcoords: TexCoords | None = None, units: str = "mm") -> Path:
    """glTF 2.0 binary: mesh ``base [V, 3]`` with morph ``targets [K, V, 3]`` (displacements, named
    ``target_names``) and a LINEAR weights animation ``weights [T, K]`` keyed at ``t / fps`` seconds.

    ``target_normals`` (optional, ``K`` arrays ``[V, 3]``) are the targets' absolute vertex normals;
    the file stores their difference to the base's. ``units`` (mm, cm, m) sets the node's scale to
    metres. With ``texcoords`` vertices are split at UV seams (glTF has one UV per vertex) and
    ``TEXCOORD_0`` is written with the vertical axis flipped (glTF's origin is top-left).
    Raises ``ValueError`` on inconsistent shapes, NaN/Inf or a bad unit.
    """
    v, f = _check_mesh(base, faces, "base")
    to_m = _check_units(units)
    _check_texcoords(texcoords, f)
    tg = np.asarray(targets, dtype=np.float32).reshape(-1, len(v), 3)
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != len(tg) or len(target_names) != len(tg) or not len(w):
        raise ValueError(f"weights must be [T >= 1, K={len(tg)}] and names K long, got {w.shape} and "
                         f"{len(target_names)}")
    if not (np.isfinite(tg).all() and np.isfinite(w).all()):
        raise ValueError("morph targets or weights contain NaN or Inf")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n_base = vertex_normals(v, f) if normals else None
    n_targets = None if target_normals is None or not normals else [np.asarray(n) - n_base for n in target_normals]
    if texcoords is not None:  # one glTF vertex per distinct (vertex, uv) corner pair
        pairs = np.stack([f.ravel(), texcoords.faces.ravel()], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        keep, f = uniq[:, 0], inverse.reshape(-1, 3)
        v, tg = v[keep], tg[:, keep]
        n_base = None if n_base is None else n_base[keep]
        n_targets = None if n_targets is None else [n[keep] for n in n_targets]
        uv = texcoords.uv[uniq[:, 1]] * np.array([1.0, -1.0], np.float32) + np.array([0.0, 1.0], np.float32)
    b = _GlbBuilder()
    idx_acc = b.add(f.astype(np.uint32).ravel(), "SCALAR", _ELEMENT_ARRAY_BUFFER)
    attributes = {"POSITION": b.add(v, "VEC3", _ARRAY_BUFFER, minmax=True)}
    if n_base is not None:
        attributes["NORMAL"] = b.add(n_base, "VEC3", _ARRAY_BUFFER)
    if texcoords is not None:
        attributes["TEXCOORD_0"] = b.add(uv, "VEC2", _ARRAY_BUFFER)
    gl_targets = []
    for k, d in enumerate(tg):
        tgt = {"POSITION": b.add(d, "VEC3", _ARRAY_BUFFER, minmax=True)}
        if n_targets is not None:
            tgt["NORMAL"] = b.add(n_targets[k], "VEC3", _ARRAY_BUFFER)
        gl_targets.append(tgt)
    primitive: dict[str, Any] = {"attributes": attributes, "indices": idx_acc, "mode": 4, "material": 0}
    mesh: dict[str, Any] = {"name": name, "primitives": [primitive]}
    animations = []
    t_len = len(w)
    if gl_targets:
        primitive["targets"] = gl_targets
        mesh["weights"] = [float(x) for x in w[0]]
        mesh["extras"] = {"targetNames": list(map(str, target_names))}
        times = np.arange(t_len, dtype=np.float32) / np.float32(fps)
        t_acc = b.add(times, "SCALAR", minmax=True)
        w_acc = b.add(w.ravel(), "SCALAR")
        animations.append({"name": name, "samplers": [{"input": t_acc, "output": w_acc,
                                                        "interpolation": "LINEAR"}],
                           "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]})
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "fc4dfs-bench",
                  "extras": {"fps": float(fps), "units": f"{units} (node scale {to_m:g} -> m)",
                             **(metadata or {})}},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0, "scale": [to_m] * 3}],
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
                    morph: Literal["frames", "basis"] = "frames", n_basis: int = 16,
                    texcoords: TexCoords | None = None, units: str = "mm") -> dict[str, list[Path]]:
    """Write ``frames`` in every requested format under ``out_dir``; returns ``{format: [files]}``.

    Layout: ``ply/frame_0000.ply ...``, ``obj/frame_0000.obj ...``, ``{stem}.npz``, ``{stem}.glb``.
    ``frames`` are in ``units`` (recorded in every file); ``texcoords`` go to OBJ and GLB.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    if "ply" in formats:
        written["ply"] = write_frames(out / "ply", frames, faces, "ply", units=units)
    if "obj" in formats:
        written["obj"] = write_frames(out / "obj", frames, faces, "obj", texcoords=texcoords, units=units)
    if "npz" in formats:
        written["npz"] = [write_npz(out / f"{stem}.npz", frames, faces, fps, landmarks,
                                    {"units": units, **(metadata or {})}, lmk_face_idx, lmk_bary)]
    if "glb" in formats:
        written["glb"] = [write_glb(out / f"{stem}.glb", frames, faces, fps, name=stem, metadata=metadata,
                                    morph=morph, n_basis=n_basis, texcoords=texcoords, units=units)]
    return written


# --------------------------------------------------------------------------- blendshape weight curves
def write_weight_curves(stem: str | Path, names: Seq[str], weights: np.ndarray, fps: float,
                        metadata: dict[str, Any] | None = None) -> list[Path]:
    """Morph-target weight curves ``weights [T, K]`` as ``{stem}.csv`` (columns ``frame, time_s`` and
    one per target name) and ``{stem}.json`` (``fps``, ``targets``, ``times``, ``weights`` per target
    and ``metadata``); returns both paths."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != len(names):
        raise ValueError(f"weights must be [T, K={len(names)}], got {w.shape}")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    stem = Path(stem)
    times = np.arange(len(w)) / float(fps)
    header = ",".join(["frame", "time_s", *names])
    rows = [",".join([str(t), f"{times[t]:.6f}", *(f"{x:.6f}" for x in w[t])]) for t in range(len(w))]
    csv = write_file(stem.with_suffix(".csv"), ("\n".join([header, *rows]) + "\n").encode("utf-8"))
    doc = {"fps": float(fps), "targets": list(names), "times": [round(float(t), 6) for t in times],
           "weights": {n: [round(float(x), 6) for x in w[:, k]] for k, n in enumerate(names)},
           "metadata": metadata or {}}
    js = write_file(stem.with_suffix(".json"),
                    (json.dumps(doc, indent=1, default=_json_default) + "\n").encode("utf-8"))
    return [csv, js]
