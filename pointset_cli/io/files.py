"""Read any supported point or mesh file by its suffix; write points in a chosen format."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pointset_cli.errors import InputError, UsageError
from pointset_cli.fsutil import atomic_path
from pointset_cli.io.arrays import encode_npy, encode_npz, read_npy, read_npz
from pointset_cli.io.gltf import read_gltf
from pointset_cli.io.guard import guarded
from pointset_cli.io.obj import encode_obj, read_obj
from pointset_cli.io.off import read_off
from pointset_cli.io.pcd import encode_pcd, read_pcd
from pointset_cli.io.ply import encode_ply, read_ply
from pointset_cli.io.shape import Shape
from pointset_cli.io.stl import read_stl
from pointset_cli.io.text import read_xyz, text_rows

POINT_SUFFIXES: frozenset[str] = frozenset({".pcd", ".xyz", ".txt", ".pts", ".npy", ".npz", ".ply"})
MESH_SUFFIXES: frozenset[str] = frozenset({".obj", ".off", ".stl", ".ply", ".glb", ".gltf"})

_READERS: dict[str, Callable[[bytes], Shape]] = {
    "ply": read_ply,
    "pcd": read_pcd,
    "xyz": read_xyz,
    "txt": read_xyz,
    "pts": lambda data: read_xyz(data, count_line=True),
    "npy": read_npy,
    "npz": read_npz,
    "obj": read_obj,
    "off": read_off,
    "stl": read_stl,
}
_ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "xyz": text_rows,
    "npy": encode_npy,
    "npz": encode_npz,
    "obj": encode_obj,
    "pcd": encode_pcd,
}
_WRITE_FORMATS = ("ply", *_ENCODERS)


def is_supported(path: Path) -> bool:
    """Whether `read_shape` knows the file's suffix (case-insensitive)."""
    return Path(path).suffix.lower() in POINT_SUFFIXES | MESH_SUFFIXES


def read_shape(path: Path, fmt: str | None = None) -> Shape:
    """Read a point or mesh file, chosen by suffix (or `fmt`, e.g. "ply"; `-` reads stdin).

    Returns Shape(points [n, D] float64, faces [f, 3] int64 or None). Raises InputError(message,
    path) for any problem: unreadable, empty, truncated, malformed, non-finite, unsupported.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in _READERS and fmt not in ("glb", "gltf"):
        known = ", ".join(sorted(POINT_SUFFIXES | MESH_SUFFIXES))
        raise InputError(f"unsupported file type {repr(fmt) if fmt else '(no suffix)'} (supported: {known})", path)
    return guarded(path, fmt.upper(), lambda: _parse(path, fmt))


def _parse(path: Path, fmt: str) -> Shape:
    data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    if not data:
        raise InputError("empty file (0 bytes)")
    if fmt in ("glb", "gltf"):
        return read_gltf(data, fmt, path.parent)
    return _READERS[fmt](data)


def write_points(
    path: Path, points: np.ndarray, fmt: str | None = None, *, binary: bool = True, force: bool = False
) -> None:
    """Write [n, D] points (D 2 or 3) as ply, xyz, npy, npz, obj or pcd, chosen by `fmt` or suffix.

    Atomic (temporary file then rename); an existing file needs `force`. `-` writes to stdout.
    `binary` applies to PLY. OBJ and PCD hold 3D points, so 2D points get z = 0 there.
    float32 input is written as 4-byte floats, anything else as 8-byte (text: exact digits).
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    fmt = "xyz" if fmt == "txt" else fmt
    if fmt not in _WRITE_FORMATS:
        what = repr(fmt) if fmt else "(no suffix)"
        raise UsageError(f"cannot write points as {what} (use {', '.join(_WRITE_FORMATS)})", path)
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or points.dtype.kind not in "iuf":
        raise ValueError(f"write_points needs a numeric [n, 2] or [n, 3] array, got {points.dtype} {points.shape}")
    payload = _encode(points, fmt, binary)
    if str(path) == "-":
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(payload)


def _encode(points: np.ndarray, fmt: str, binary: bool) -> bytes:
    if fmt in ("obj", "pcd") and points.shape[1] == 2:
        points = np.concatenate([points, np.zeros_like(points[:, :1])], axis=1)
    return encode_ply(points, binary) if fmt == "ply" else _ENCODERS[fmt](points)
