"""PLY reader (ascii, binary little/big endian; points or triangle meshes) and point writer.

The header is validated against the file size before any array is allocated, so a file whose
header promises more than it holds fails fast with a one-line error.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.shape import Shape, fan_triangulate, make_shape
from pointset_cli.io.text import text_rows

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
_FACE_PROPS = ("vertex_indices", "vertex_index")


class _Property(NamedTuple):
    name: str
    dtype: str  # numpy type code without byte order, e.g. "f4"
    count_dtype: str | None  # list length type for a list property, else None


class _Element(NamedTuple):
    name: str
    count: int
    props: list[_Property]


def _parse_header(data: bytes) -> tuple[str, list[_Element], int]:
    """Return (format, elements, byte offset of the body)."""
    if not data.startswith(b"ply") or data[3:4] not in (b"\n", b"\r"):
        raise InputError("not a PLY file (missing 'ply' magic)")
    end = data.find(b"end_header", 0, 1 << 20)
    if end < 0:
        raise InputError("PLY header has no end_header line")
    body = data.find(b"\n", end)
    body = len(data) if body < 0 else body + 1
    try:
        lines = data[:end].decode("ascii").splitlines()[1:]
    except UnicodeDecodeError:
        raise InputError("PLY header is not ASCII text") from None
    fmt = None
    elements: list[_Element] = []
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[1] in _FORMATS:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in _TYPES:
            elements[-1].props.append(_Property(words[2], _TYPES[words[1]], None))
        elif words[0] == "property" and elements and len(words) == 5 and words[1] == "list":
            if words[2] not in _TYPES or words[3] not in _TYPES:
                raise InputError(f"unknown PLY list types in header line {line.strip()!r}")
            elements[-1].props.append(_Property(words[4], _TYPES[words[3]], _TYPES[words[2]]))
        else:
            raise InputError(f"bad PLY header line {line.strip()[:60]!r}")
    if fmt is None:
        raise InputError("PLY header has no valid format line")
    return fmt, elements, body


def _noun(element: str) -> str:
    return "vertices" if element == "vertex" else f"{element}s"


def _vertex_columns(element: _Element) -> list[str]:
    names = [p.name for p in element.props]
    if any(p.count_dtype for p in element.props):
        raise InputError("PLY vertex element with list properties is not supported")
    if "x" not in names or "y" not in names:
        raise InputError("PLY vertex element has no x and y properties")
    return ["x", "y", "z"] if "z" in names else ["x", "y"]


def _face_property(element: _Element) -> str:
    for p in element.props:
        if p.name in _FACE_PROPS and p.count_dtype:
            return p.name
    raise InputError("PLY face element has no vertex_indices list")


def read_ply(data: bytes) -> Shape:
    """Parse a PLY file's bytes; a file without a face element (or with 0 faces) gives faces None."""
    fmt, elements, offset = _parse_header(data)
    names = [e.name for e in elements]
    if "vertex" not in names:
        raise InputError("PLY header has no vertex element")
    if fmt == "ascii":
        parts = _read_ascii(data[offset:], elements)
    else:
        parts = _read_binary(data, offset, elements, _FORMATS[fmt])
    return make_shape(*parts)


def _read_binary(
    data: bytes, offset: int, elements: list[_Element], endian: str
) -> tuple[np.ndarray, np.ndarray | None]:
    points = faces = None
    for element in elements:
        if not any(p.count_dtype for p in element.props):
            dtype = np.dtype([(p.name, endian + p.dtype) for p in element.props])
            held = (len(data) - offset) // max(dtype.itemsize, 1)
            if element.count > held:
                raise InputError(
                    f"truncated binary PLY: header promises {element.count} {_noun(element.name)}, file holds {held}"
                )
            rows = np.frombuffer(data, dtype, element.count, offset)
            offset += dtype.itemsize * element.count
            if element.name == "vertex":
                points = np.stack([rows[c] for c in _vertex_columns(element)], axis=1)
            continue
        want = _face_property(element) if element.name == "face" else None
        offset, lists = _walk_binary_lists(data, offset, element, endian, want)
        if want is not None:
            faces = lists
    return points, faces


def _walk_binary_lists(
    data: bytes, offset: int, element: _Element, endian: str, want: str | None
) -> tuple[int, np.ndarray | None]:
    """Step over an element with list properties; return (new offset, triangles of `want`)."""
    props = element.props
    if want is not None and len(props) == 1 and len(data) - offset >= np.dtype(props[0].count_dtype).itemsize:
        # the common case: every face has as many corners as the first one, read at once
        p = props[0]
        corners = int(np.frombuffer(data, endian + p.count_dtype, 1, offset)[0])
        row = np.dtype([("n", endian + p.count_dtype), ("i", endian + p.dtype, (max(corners, 0),))])
        if element.count * row.itemsize <= len(data) - offset:
            rows = np.frombuffer(data, row, element.count, offset)
            if (rows["n"] == corners).all():
                flat = rows["i"].reshape(-1)
                return offset + row.itemsize * element.count, fan_triangulate(np.full(element.count, corners), flat)
    counts: list[int] = []
    flat: list[int] = []
    for _ in range(element.count):
        for p in props:
            size = np.dtype(p.dtype).itemsize
            if p.count_dtype is None:
                offset += size
                continue
            csize = np.dtype(p.count_dtype).itemsize
            if offset + csize > len(data):
                raise InputError(f"truncated binary PLY: {element.name} data ends early")
            n = int(np.frombuffer(data, endian + p.count_dtype, 1, offset)[0])
            offset += csize
            if n < 0 or offset + n * size > len(data):
                raise InputError(f"truncated binary PLY: {element.name} data ends early")
            if p.name == want:
                counts.append(n)
                flat.extend(np.frombuffer(data, endian + p.dtype, n, offset).tolist())
            offset += n * size
    if offset > len(data):
        raise InputError(f"truncated binary PLY: {element.name} data ends early")
    return offset, (fan_triangulate(np.array(counts), np.array(flat)) if want else None)


def _read_ascii(body: bytes, elements: list[_Element]) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        lines = [line for line in body.decode("ascii").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise InputError("ascii PLY body holds non-ASCII bytes") from None
    points = faces = None
    start = 0
    for element in elements:
        rows = lines[start : start + element.count]
        start += element.count
        if len(rows) < element.count:
            raise InputError(
                f"truncated ascii PLY: header promises {element.count} {_noun(element.name)}, file holds {len(rows)}"
            )
        if element.name == "vertex":
            points = _ascii_vertices(rows, element)
        elif element.name == "face":
            faces = _ascii_faces(rows, element)
    return points, faces


def _ascii_vertices(rows: list[str], element: _Element) -> np.ndarray:
    columns = _vertex_columns(element)
    nprops = len(element.props)
    values = " ".join(rows).split()
    if len(values) != nprops * len(rows):
        bad = next(i for i, r in enumerate(rows) if len(r.split()) != nprops)
        raise InputError(f"ascii PLY vertex {bad} has {len(rows[bad].split())} values, expected {nprops}")
    table = np.array(values, dtype=np.float64).reshape(len(rows), nprops)
    index = [p.name for p in element.props]
    return table[:, [index.index(c) for c in columns]]


def _ascii_faces(rows: list[str], element: _Element) -> np.ndarray:
    want = _face_property(element)
    counts: list[int] = []
    flat: list[str] = []
    for i, row in enumerate(rows):
        words = row.split()
        pos = 0
        for p in element.props:
            if p.count_dtype is None:
                pos += 1
                continue
            n = int(words[pos]) if pos < len(words) else -1
            if n < 0 or pos + 1 + n > len(words):
                raise InputError(f"ascii PLY face {i} is shorter than its vertex count")
            if p.name == want:
                counts.append(n)
                flat.extend(words[pos + 1 : pos + 1 + n])
            pos += 1 + n
    return fan_triangulate(np.array(counts), np.array(flat, dtype=np.int64))


def encode_ply(points: np.ndarray, binary: bool = True) -> bytes:
    """PLY bytes for [n, D] points (D 2 or 3): float32 kept as float, anything else as double."""
    kind, ctype = ("float", "<f4") if points.dtype == np.float32 else ("double", "<f8")
    names = "xyz"[: points.shape[1]]
    header = "\n".join(
        ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", f"element vertex {len(points)}"]
        + [f"property {kind} {c}" for c in names]
        + ["end_header", ""]
    ).encode("ascii")
    if binary:
        return header + np.ascontiguousarray(points, dtype=ctype).tobytes()
    return header + text_rows(points)

