"""PCD reader (PCL's point cloud format: ascii, binary, binary_compressed) and binary writer.

Only x, y, z are kept; other fields (rgb, normals, padding) are skipped by their declared sizes.
Reading a typical 1,024-point binary file is a few header lines and one np.frombuffer.
"""

from __future__ import annotations

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.guard import DECODED_LIMIT
from pointset_cli.io.lzf import lzf_decompress
from pointset_cli.io.shape import Shape, make_shape

_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
_SIZES = {"F": (4, 8), "I": (1, 2, 4, 8), "U": (1, 2, 4, 8)}
_HEADER_LIMIT = 1 << 16


def _parse_header(data: bytes) -> tuple[dict[str, list[str]], int]:
    """Return ({key: values}, offset of the body) from the lines up to and including DATA."""
    header: dict[str, list[str]] = {}
    pos = 0
    while "DATA" not in header:
        nl = data.find(b"\n", pos, _HEADER_LIMIT)
        if nl < 0:
            raise InputError("not a PCD file (no DATA line)" if header else "not a PCD file")
        try:
            words = data[pos:nl].decode("ascii").split()
        except UnicodeDecodeError:
            raise InputError("not a PCD file (header is not ASCII text)") from None
        pos = nl + 1
        if not words or words[0].startswith("#"):
            continue
        if words[0] not in _KEYS:
            raise InputError(f"bad PCD header line {' '.join(words)[:60]!r}" if header else "not a PCD file")
        header[words[0]] = words[1:]
    return header, pos


def _ints(header: dict[str, list[str]], key: str, default: list[int] | None = None) -> list[int]:
    if key not in header:
        if default is None:
            raise InputError(f"PCD header has no {key} line")
        return default
    values = header[key]
    if not values or not all(v.isdigit() for v in values):
        raise InputError(f"PCD {key} line must hold non-negative integers, got {' '.join(values)[:40]!r}")
    return [int(v) for v in values]


def _field_dtype(header: dict[str, list[str]]) -> tuple[np.dtype, list[int]]:
    """The dtype of one point record, and the positions of x, y, z among the fields."""
    fields = header.get("FIELDS")
    if not fields:
        raise InputError("PCD header has no FIELDS line")
    sizes = _ints(header, "SIZE")
    types = header.get("TYPE", [])
    counts = _ints(header, "COUNT", [1] * len(fields))
    for key, values in (("SIZE", sizes), ("TYPE", types), ("COUNT", counts)):
        if len(values) != len(fields):
            raise InputError(f"PCD FIELDS has {len(fields)} entries, {key} has {len(values)}")
    for t, s in zip(types, sizes, strict=True):
        if s not in _SIZES.get(t, ()):
            raise InputError(f"PCD field type {t!r} of size {s} is not supported")
    if not {"x", "y", "z"} <= set(fields):
        raise InputError(f"PCD FIELDS must include x y z, got {' '.join(fields)[:60]!r}")
    xyz = [fields.index(c) for c in "xyz"]
    if any(counts[i] != 1 for i in xyz):
        raise InputError("PCD fields x y z must have COUNT 1")
    dtype = np.dtype([(f"f{i}", f"<{t.lower()}{s}", (c,)) for i, (t, s, c) in enumerate(zip(types, sizes, counts))])
    return dtype, xyz


def read_pcd(data: bytes) -> Shape:
    """Parse a PCD file's bytes into a points-only Shape ([n, 3])."""
    header, offset = _parse_header(data)
    dtype, xyz = _field_dtype(header)
    width, height = _ints(header, "WIDTH")[0], _ints(header, "HEIGHT", [1])[0]
    n = _ints(header, "POINTS", [width * height])[0]
    if n != width * height:
        raise InputError(f"PCD POINTS {n} does not equal WIDTH x HEIGHT = {width * height}")
    kind = header["DATA"][0] if header["DATA"] else ""
    if kind == "binary":
        held = (len(data) - offset) // dtype.itemsize
        if n > held:
            raise InputError(f"truncated binary PCD: header promises {n} points, file holds {held}")
        rows = np.frombuffer(data, dtype, n, offset)
        return make_shape(np.concatenate([rows[f"f{i}"] for i in xyz], axis=1))
    if kind == "binary_compressed":
        return make_shape(_read_compressed(data, offset, dtype, xyz, n))
    if kind == "ascii":
        return make_shape(_read_ascii(data[offset:], dtype, xyz, n))
    raise InputError(f"PCD DATA must be ascii, binary or binary_compressed, got {kind[:20]!r}")


def _read_compressed(data: bytes, offset: int, dtype: np.dtype, xyz: list[int], n: int) -> np.ndarray:
    """binary_compressed: two uint32 (compressed, raw size), then LZF of the fields stored column by column."""
    if len(data) < offset + 8:
        raise InputError("truncated compressed PCD: no size words after the header")
    compressed, raw_size = np.frombuffer(data, "<u4", 2, offset).tolist()
    if raw_size > DECODED_LIMIT:
        raise InputError(f"compressed PCD inflates to {raw_size:,} bytes, more than the {DECODED_LIMIT:,} a file may hold")
    if raw_size != n * dtype.itemsize:
        raise InputError(f"compressed PCD holds {raw_size} bytes, header promises {n} points of {dtype.itemsize}")
    payload = data[offset + 8 : offset + 8 + compressed]
    if len(payload) < compressed:
        raise InputError(f"truncated compressed PCD: payload of {compressed} bytes, file holds {len(payload)}")
    raw = lzf_decompress(payload, raw_size)
    starts = np.cumsum([0] + [dtype[i].itemsize for i in range(len(dtype))]) * n  # [F + 1] column offsets
    return np.stack([np.frombuffer(raw, dtype[i].base, n, int(starts[i])) for i in xyz], axis=1)


def _read_ascii(body: bytes, dtype: np.dtype, xyz: list[int], n: int) -> np.ndarray:
    widths = [dtype[i].shape[0] for i in range(len(dtype))]
    columns = np.cumsum([0] + widths)[xyz]  # column of x, y, z in a row of values
    try:
        lines = [ln for ln in body.decode("ascii").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise InputError("ascii PCD body holds non-ASCII bytes") from None
    if len(lines) < n:
        raise InputError(f"truncated ascii PCD: header promises {n} points, file holds {len(lines)}")
    values = " ".join(lines[:n]).split()
    if len(values) != n * sum(widths):
        raise InputError(f"ascii PCD rows must hold {sum(widths)} values each")
    return np.array(values, dtype=np.float64).reshape(n, sum(widths))[:, columns]


def encode_pcd(points: np.ndarray) -> bytes:
    """Binary PCD bytes for [n, 3] points: float32 kept as 4-byte floats, anything else as 8-byte."""
    n = len(points)
    size = 4 if points.dtype == np.float32 else 8
    header = (
        f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE {size} {size} {size}\n"
        f"TYPE F F F\nCOUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    return header.encode("ascii") + np.ascontiguousarray(points, dtype=f"<f{size}").tobytes()
