"""A fast, vectorised PLY reader and writer for triangle meshes (ASCII and binary, either endianness).

Reading one file is a single ``read()`` and a few ``numpy.frombuffer`` views; no per-vertex Python
loop unless a file needs it (polygons or variable-length lists, which are parsed correctly but
slowly). :class:`PlyFrameReader` reads many meshes of one fixed topology: it returns vertices only
and checks each file's face list against the reference by comparing raw bytes, parsing the faces
only when the bytes differ (another encoding of possibly the same faces).

Every error is a :class:`PlyError` whose message names the file.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

PlyFormat = Literal["ascii", "binary_little_endian", "binary_big_endian"]
FORMATS: tuple[str, ...] = ("ascii", "binary_little_endian", "binary_big_endian")

_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
          "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
          "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_TYPE_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
               "f4": "float", "f8": "double"}
_MAX_HEADER = 1 << 16


class PlyError(ValueError):
    """A file is not a readable PLY triangle mesh (not PLY, malformed, truncated, not triangles)."""


class PlyTopologyError(PlyError):
    """A PLY file's vertex count or face list differs from the reference topology."""


@dataclass(frozen=True)
class PlyProperty:
    """One property of an element; ``count_dtype`` is set for list properties."""

    name: str
    dtype: str
    count_dtype: str | None = None

    @property
    def is_list(self) -> bool:
        return self.count_dtype is not None


@dataclass(frozen=True)
class PlyElement:
    name: str
    count: int
    properties: tuple[PlyProperty, ...]

    @property
    def has_lists(self) -> bool:
        return any(p.is_list for p in self.properties)

    def prop_names(self) -> list[str]:
        return [p.name for p in self.properties]


@dataclass(frozen=True)
class PlyHeader:
    format: str
    elements: tuple[PlyElement, ...]
    size: int  # bytes up to and including the newline after end_header
    comments: tuple[str, ...] = ()

    def element(self, name: str) -> PlyElement | None:
        for e in self.elements:
            if e.name == name:
                return e
        return None

    @property
    def byteorder(self) -> str:
        return ">" if self.format == "binary_big_endian" else "<"


@dataclass
class PlyMesh:
    """Vertices ``[V, 3]`` float32 (as stored, no unit change) and triangle faces ``[F, 3]`` int64."""

    vertices: np.ndarray
    faces: np.ndarray | None
    header: PlyHeader


# --------------------------------------------------------------------------- header
def parse_header(data: bytes | memoryview, path: str | os.PathLike = "<bytes>") -> PlyHeader:
    """Parse the header at the start of ``data``; raise :class:`PlyError` naming ``path``."""
    head = bytes(data[:_MAX_HEADER])
    if not head.startswith(b"ply"):
        raise PlyError(f"{path}: not a PLY file (it does not start with 'ply')")
    end = head.find(b"end_header")
    if end < 0:
        if len(data) < _MAX_HEADER:
            raise PlyError(f"{path}: truncated PLY header (no 'end_header'; file has {len(data)} bytes)")
        raise PlyError(f"{path}: PLY header longer than {_MAX_HEADER} bytes or missing 'end_header'")
    nl = head.find(b"\n", end)
    if nl < 0:
        raise PlyError(f"{path}: truncated PLY header (nothing after 'end_header')")
    # comments often carry an exporter's non-ASCII text (a name, a path, '©'), the same in every file of a
    # dataset: they are read as UTF-8 (undecodable bytes replaced); every other header line must be ASCII
    text = head[:end].decode("utf-8", errors="replace")
    fmt = None
    elements: list[tuple[str, int, list[PlyProperty]]] = []
    comments: list[str] = []
    for lineno, raw in enumerate(text.replace("\r", "").split("\n")[1:], start=2):
        words = raw.split()
        if not words:
            continue
        key = words[0]
        if key not in ("comment", "obj_info") and not raw.isascii():
            raise PlyError(f"{path}: PLY header line {lineno} is not ASCII text: {ascii(raw.strip())}")
        try:
            if key == "format":
                if words[1] not in FORMATS:
                    raise PlyError(f"{path}: unknown PLY format {words[1]!r} (line {lineno})")
                fmt = words[1]
            elif key in ("comment", "obj_info"):
                comments.append(raw[len(key):].strip())
            elif key == "element":
                count = int(words[2])
                if count < 0:
                    raise ValueError("negative element count")
                elements.append((words[1], count, []))
            elif key == "property":
                if not elements:
                    raise PlyError(f"{path}: PLY property before any element (line {lineno})")
                if words[1] == "list":
                    prop = PlyProperty(words[4], _TYPES[words[3]], _TYPES[words[2]])
                else:
                    prop = PlyProperty(words[2], _TYPES[words[1]])
                elements[-1][2].append(prop)
            else:
                raise PlyError(f"{path}: unexpected PLY header line {lineno}: {raw.strip()!r}")
        except (IndexError, KeyError, ValueError) as e:
            if isinstance(e, PlyError):
                raise
            raise PlyError(f"{path}: malformed PLY header line {lineno}: {raw.strip()!r}") from None
    if fmt is None:
        raise PlyError(f"{path}: PLY header has no 'format' line")
    elems = tuple(PlyElement(n, c, tuple(p)) for n, c, p in elements)
    return PlyHeader(fmt, elems, nl + 1, tuple(comments))


def read_header(path: str | os.PathLike) -> PlyHeader:
    """Read only the header of a PLY file."""
    with open(path, "rb") as f:
        return parse_header(f.read(_MAX_HEADER), path)


# --------------------------------------------------------------------------- body parsing
@dataclass
class _Block:
    """Where one element's data lies in the file, and a parsed view of it when already parsed."""

    element: PlyElement
    start: int
    stop: int
    rows: np.ndarray | None = None  # ASCII: [count, tokens] float64; binary: structured array


def _scalar_dtype(el: PlyElement, order: str) -> np.dtype:
    return np.dtype([(p.name, order + p.dtype) for p in el.properties])


def _triangle_dtype(el: PlyElement, order: str) -> np.dtype | None:
    """Structured dtype of an element whose lists all hold exactly three items (triangle faces)."""
    fields = []
    for p in el.properties:
        if p.is_list:
            fields += [(p.name + "#n", order + p.count_dtype), (p.name, order + p.dtype, (3,))]
        else:
            fields.append((p.name, order + p.dtype))
    return np.dtype(fields)


def _binary_blocks(data: memoryview, header: PlyHeader, path, stop_after: str | None) -> dict[str, _Block]:
    order = header.byteorder
    pos = header.size
    blocks: dict[str, _Block] = {}
    for el in header.elements:
        if not el.has_lists:
            dt = _scalar_dtype(el, order)
            end = pos + el.count * dt.itemsize
            _need(data, end, path, el)
            blocks[el.name] = _Block(el, pos, end)
        else:
            dt = _triangle_dtype(el, order)
            end = pos + el.count * dt.itemsize
            rows = None
            if end <= len(data):
                rows = np.frombuffer(data, dtype=dt, count=el.count, offset=pos)
                if not all((rows[p.name + "#n"] == 3).all() for p in el.properties if p.is_list):
                    rows = None
            if rows is None:  # not all triangles, or truncated: walk the rows to find out which
                end = _walk_binary_lists(data, el, pos, order, path)
            blocks[el.name] = _Block(el, pos, end, rows)
        pos = end
        if el.name == stop_after:
            break
    return blocks


def _need(data, end: int, path, el: PlyElement) -> None:
    if end > len(data):
        raise PlyError(f"{path}: truncated PLY file: element '{el.name}' ({el.count} rows) needs "
                       f"{end} bytes but the file has {len(data)}")


def _walk_binary_lists(data, el: PlyElement, pos: int, order: str, path) -> int:
    """End offset of a binary element with variable-length lists (slow path; Python loop)."""
    for _ in range(el.count):
        for p in el.properties:
            if p.is_list:
                cdt = np.dtype(order + p.count_dtype)
                _need(data, pos + cdt.itemsize, path, el)
                n = int(np.frombuffer(data, cdt, 1, pos)[0])
                pos += cdt.itemsize + n * np.dtype(p.dtype).itemsize
            else:
                pos += np.dtype(p.dtype).itemsize
            _need(data, pos, path, el)
    return pos


def _line_ends(data: memoryview, start: int) -> np.ndarray:
    return np.flatnonzero(np.frombuffer(data, np.uint8, offset=start) == 10) + start


def _ascii_blocks(data: memoryview, header: PlyHeader, path, stop_after: str | None) -> dict[str, _Block]:
    ends = _line_ends(data, header.size)
    line = 0
    blocks: dict[str, _Block] = {}
    pos = header.size
    total = len(data)
    for el in header.elements:
        if el.count == 0:
            blocks[el.name] = _Block(el, pos, pos)
            continue
        last = line + el.count - 1
        if last < len(ends):
            end = int(ends[last]) + 1
        elif last == len(ends) and total > (int(ends[-1]) + 1 if len(ends) else header.size):
            end = total  # last line without a trailing newline
        else:
            raise PlyError(f"{path}: truncated PLY file: element '{el.name}' needs {el.count} lines but the "
                           f"file ends after {max(0, len(ends) - line)}")
        blocks[el.name] = _Block(el, pos, end)
        pos, line = end, last + 1
        if el.name == stop_after:
            break
    return blocks


def _parse_ascii(text: bytes, dtype: type) -> np.ndarray | None:
    """The whitespace-separated numbers of ``text`` as ``dtype``, or None when a token is not one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # numpy warns, then stops early, on bad text
            return np.fromstring(text, dtype=dtype, sep=" ")
    except (ValueError, DeprecationWarning):
        return None


def _ascii_rows(data, block: _Block, path) -> np.ndarray | None:
    """``[count, tokens]`` when every row has the same token count, else None: int64 when every property
    of the element is an integer (face lists: parsed about 5x faster than as floats), else float64."""
    el = block.element
    if block.rows is not None:
        return block.rows
    text = bytes(data[block.start:block.stop])
    integer = all(np.dtype(p.dtype).kind in "iu" and np.dtype(p.count_dtype or "i4").kind in "iu"
                  for p in el.properties)
    flat = _parse_ascii(text, np.int64) if integer else None
    if flat is None:  # real-valued properties, or integers written as "3.0"
        flat = _parse_ascii(text, np.float64)
    if flat is None:
        raise PlyError(f"{path}: malformed PLY data in element '{el.name}' (non-numeric text)")
    if el.count == 0:
        block.rows = flat.reshape(0, 0)
        return block.rows
    if flat.size % el.count:
        return None
    rows = flat.reshape(el.count, -1)
    block.rows = rows
    return rows


# --------------------------------------------------------------------------- public reading
def _xyz_index(el: PlyElement, path) -> list[int]:
    names = el.prop_names()
    try:
        return [names.index(c) for c in "xyz"]
    except ValueError:
        raise PlyError(f"{path}: PLY vertex element has no x, y, z properties (has {names})") from None


def _vertices(data, header: PlyHeader, block: _Block, path, out: np.ndarray | None = None,
              scale: float = 1.0) -> np.ndarray:
    """x, y, z of every vertex times ``scale``, as float32 (written into ``out`` when given)."""
    el = block.element
    if el.has_lists:
        raise PlyError(f"{path}: PLY vertex element has list properties; not supported")
    ix = _xyz_index(el, path)
    if out is None:
        out = np.empty((el.count, 3), np.float32)
    if header.format == "ascii":
        rows = _ascii_rows(data, block, path)
        if rows is None or rows.shape[1] != len(el.properties):
            raise PlyError(f"{path}: malformed PLY vertex data (expected {len(el.properties)} values per line)")
        src = rows[:, :3] if ix == [0, 1, 2] else rows[:, ix]
        np.multiply(src, scale, out=out, casting="same_kind")
        return out
    order = header.byteorder
    types = {p.dtype for p in el.properties}
    if len(types) == 1:
        arr = np.frombuffer(data, order + types.pop(), el.count * len(el.properties), block.start)
        table = arr.reshape(el.count, -1)
        src = table[:, :3] if ix == [0, 1, 2] else table[:, ix]
        np.multiply(src, scale, out=out, casting="same_kind")
        return out
    arr = np.frombuffer(data, _scalar_dtype(el, order), el.count, block.start)
    for k, c in enumerate("xyz"):
        np.multiply(arr[c], scale, out=out[:, k], casting="same_kind")
    return out


def _face_prop(el: PlyElement, path) -> PlyProperty:
    lists = [p for p in el.properties if p.is_list]
    for p in lists:
        if p.name in ("vertex_indices", "vertex_index"):
            return p
    if len(lists) == 1:
        return lists[0]
    raise PlyError(f"{path}: PLY face element has no vertex_indices list")


def _faces(data, header: PlyHeader, block: _Block, path) -> np.ndarray:
    el = block.element
    prop = _face_prop(el, path)
    if el.count == 0:
        return np.zeros((0, 3), np.int64)
    if header.format != "ascii":
        if block.rows is not None:
            return block.rows[prop.name].astype(np.int64)
        return _faces_slow_binary(data, header, block, prop, path)
    rows = _ascii_rows(data, block, path)
    col = [p.name for p in el.properties].index(prop.name)
    # with only triangles, each list occupies 1 + 3 tokens and scalars 1 token
    width = sum(4 if p.is_list else 1 for p in el.properties)
    if rows is not None and rows.shape[1] == width:
        start = sum(4 if p.is_list else 1 for p in el.properties[:col])
        if (rows[:, start] == 3).all():
            return rows[:, start + 1:start + 4].astype(np.int64)
    return _faces_slow_ascii(data, block, col, path)


def _faces_slow_binary(data, header: PlyHeader, block: _Block, prop: PlyProperty, path) -> np.ndarray:
    order = header.byteorder
    pos = block.start
    faces = np.empty((block.element.count, 3), np.int64)
    for i in range(block.element.count):
        for p in block.element.properties:
            if p.is_list:
                cdt, idt = np.dtype(order + p.count_dtype), np.dtype(order + p.dtype)
                n = int(np.frombuffer(data, cdt, 1, pos)[0])
                pos += cdt.itemsize
                if p is prop:
                    if n != 3:
                        raise PlyError(f"{path}: PLY face {i} has {n} vertices; only triangle meshes are supported")
                    faces[i] = np.frombuffer(data, idt, 3, pos)
                pos += n * idt.itemsize
            else:
                pos += np.dtype(p.dtype).itemsize
    return faces


def _faces_slow_ascii(data, block: _Block, col: int, path) -> np.ndarray:
    lines = bytes(data[block.start:block.stop]).splitlines()
    faces = np.empty((block.element.count, 3), np.int64)
    for i, line in enumerate(lines[:block.element.count]):
        tok = line.split()
        pos = 0
        try:
            for k, p in enumerate(block.element.properties):
                if p.is_list:
                    n = int(tok[pos])
                    if k == col:
                        if n != 3:
                            raise PlyError(f"{path}: PLY face {i} has {n} vertices; only triangle meshes are "
                                           "supported")
                        faces[i] = [int(t) for t in tok[pos + 1:pos + 4]]
                    pos += 1 + n
                else:
                    pos += 1
            if pos != len(tok):
                raise ValueError
        except (IndexError, ValueError) as e:
            if isinstance(e, PlyError):
                raise
            raise PlyError(f"{path}: malformed or truncated PLY face line {i}: {line[:60]!r}") from None
    return faces


def _read_bytes(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise PlyError(f"{path}: is a directory, not a PLY file") from None


def _blocks(data, header: PlyHeader, path, stop_after: str | None = None) -> dict[str, _Block]:
    if header.format == "ascii":
        return _ascii_blocks(data, header, path, stop_after)
    return _binary_blocks(data, header, path, stop_after)


def read_ply(path: str | os.PathLike, faces: bool = True) -> PlyMesh:
    """Read a PLY triangle mesh: vertices ``[V, 3]`` float32 and (unless ``faces=False``) faces."""
    data = memoryview(_read_bytes(path))
    header = parse_header(data, path)
    if header.element("vertex") is None:
        raise PlyError(f"{path}: PLY file has no vertex element")
    blocks = _blocks(data, header, path, None if faces else "vertex")
    verts = _vertices(data, header, blocks["vertex"], path)
    tri = None
    if faces:
        tri = _faces(data, header, blocks["face"], path) if "face" in blocks else np.zeros((0, 3), np.int64)
        if tri.size and (tri.min() < 0 or tri.max() >= len(verts)):
            raise PlyError(f"{path}: PLY face indices outside [0, {len(verts)})")
    return PlyMesh(verts, tri, header)


# --------------------------------------------------------------------------- many files, one topology
class PlyFrameReader:
    """Read the vertices of many PLY files that share one topology, checking each file's faces.

    ``faces`` is the reference face list ``[F, 3]``. A file with another vertex count or another
    face list raises :class:`PlyTopologyError`; an unreadable one raises :class:`PlyError`.
    """

    def __init__(self, faces: np.ndarray, num_vertices: int, reference: str = "the reference mesh") -> None:
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        self.num_vertices = int(num_vertices)
        self.reference = str(reference)
        self._known_face_bytes: set[tuple[str, bytes]] = set()
        # binary files whose header bytes equal a seen one share its layout: (header, face range, face bytes)
        self._fast: tuple[bytes, PlyHeader, _Block, int, int, bytes] | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "PlyFrameReader":
        """A reader whose reference topology is the faces and vertex count of ``path``."""
        mesh = read_ply(path)
        if mesh.faces is None or len(mesh.faces) == 0:
            raise PlyError(f"{path}: PLY file has no faces; cannot take the topology from it")
        return cls(mesh.faces, len(mesh.vertices), str(path))

    def read(self, path: str | os.PathLike, out: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
        """Vertices ``[V, 3]`` float32 of ``path`` times ``scale`` (written into ``out`` when given)."""
        raw_data = _read_bytes(path)
        fast = self._fast
        if fast is not None:
            head, header, vblock, fstart, fstop, face_bytes = fast
            # same header bytes => same layout; identical face bytes => same faces (and not truncated)
            if raw_data.startswith(head) and raw_data[fstart:fstop] == face_bytes:
                return _vertices(raw_data, header, vblock, path, out, scale)
        data = memoryview(raw_data)
        header = parse_header(data, path)
        vel, fel = header.element("vertex"), header.element("face")
        if vel is None:
            raise PlyError(f"{path}: PLY file has no vertex element")
        if vel.count != self.num_vertices:
            raise PlyTopologyError(f"{path}: has {vel.count} vertices but {self.reference} has "
                                   f"{self.num_vertices}; every mesh of a dataset must share one topology")
        if fel is None or fel.count != len(self.faces):
            got = 0 if fel is None else fel.count
            raise PlyTopologyError(f"{path}: has {got} faces but {self.reference} has {len(self.faces)}; "
                                   "every mesh of a dataset must share one topology")
        blocks = _blocks(data, header, path)
        verts = _vertices(data, header, blocks["vertex"], path, out, scale)
        fb = blocks["face"]
        raw = bytes(data[fb.start:fb.stop])
        signature = (header.format + repr(fel.properties), raw)
        if signature not in self._known_face_bytes:
            faces = _faces(data, header, fb, path)
            if not np.array_equal(faces, self.faces):
                bad = int(np.flatnonzero((faces != self.faces).any(1))[0])
                raise PlyTopologyError(f"{path}: its face list differs from {self.reference} (first at face "
                                       f"{bad}: {faces[bad].tolist()} vs {self.faces[bad].tolist()}); every "
                                       "mesh of a dataset must share one topology")
            if len(self._known_face_bytes) < 4:  # remember a few encodings; each is ~F*13 bytes
                self._known_face_bytes.add(signature)
        if header.format != "ascii" and fb.rows is not None:
            self._fast = (raw_data[:header.size], header, blocks["vertex"], fb.start, fb.stop, raw)
        return verts


# --------------------------------------------------------------------------- writing
def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray | None = None,
              fmt: str = "binary_little_endian", vertex_dtype: str = "f4", index_dtype: str = "i4",
              count_dtype: str = "u1", comments: Iterable[str] = (),
              extra_vertex_properties: dict[str, np.ndarray] | None = None, precision: int = 6) -> None:
    """Write a triangle mesh as PLY (``fmt``: ascii, binary_little_endian or binary_big_endian).

    ``extra_vertex_properties`` maps a name to a ``[V]`` array written after x, y, z (as the
    vertex dtype), e.g. normals or a confidence, to exercise readers on richer files.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3], got {v.shape}")
    f = np.zeros((0, 3), np.int64) if faces is None else np.asarray(faces, dtype=np.int64)
    extra = {k: np.asarray(a, dtype=np.float64).reshape(-1) for k, a in (extra_vertex_properties or {}).items()}
    for k, a in extra.items():
        if len(a) != len(v):
            raise ValueError(f"extra vertex property {k!r} has {len(a)} values for {len(v)} vertices")
    names = ["x", "y", "z", *extra]
    lines = ["ply", f"format {fmt} 1.0", *(f"comment {c}" for c in comments), f"element vertex {len(v)}"]
    lines += [f"property {_TYPE_NAMES[vertex_dtype]} {n}" for n in names]
    if faces is not None:
        lines += [f"element face {len(f)}",
                  f"property list {_TYPE_NAMES[count_dtype]} {_TYPE_NAMES[index_dtype]} vertex_indices"]
    lines.append("end_header")
    head = ("\n".join(lines) + "\n").encode("ascii")
    table = np.column_stack([v, *extra.values()]) if extra else v
    if fmt == "ascii":
        row = " ".join([f"%.{precision}g"] * table.shape[1]) + "\n"
        body = ((row * len(table)) % tuple(table.ravel().tolist())
                + ("3 %d %d %d\n" * len(f)) % tuple(f.ravel().tolist())).encode("ascii")
    else:
        order = ">" if fmt == "binary_big_endian" else "<"
        body = table.astype(order + vertex_dtype).tobytes()
        if faces is not None:
            fdt = np.dtype([("n", order + count_dtype), ("i", order + index_dtype, (3,))])
            rec = np.empty(len(f), fdt)
            rec["n"] = 3
            rec["i"] = f
            body += rec.tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(head + body)
