"""STL, ascii and binary; repeated corner coordinates are merged into shared vertices."""

from __future__ import annotations

import re

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.shape import Shape, make_shape

_TRIANGLE = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])  # 50 bytes
_VERTEX = re.compile(rb"^\s*vertex\s+(\S+)\s+(\S+)\s+(\S+)", re.MULTILINE)


def read_stl(data: bytes) -> Shape:
    """Parse STL bytes. Binary: 80-byte header, uint32 count, 50 bytes per triangle."""
    if len(data) >= 84:
        count = int(np.frombuffer(data, "<u4", 1, 80)[0])
        if len(data) == 84 + count * _TRIANGLE.itemsize:  # binary files may also begin with "solid"
            corners = np.frombuffer(data, _TRIANGLE, count, 84)["corners"].reshape(-1, 3)
            return _merge(corners)
    if data.lstrip().startswith(b"solid"):
        return _read_ascii(data)
    if len(data) < 84:
        raise InputError(f"truncated binary STL: {len(data)} bytes, the header alone needs 84")
    held = (len(data) - 84) // _TRIANGLE.itemsize
    raise InputError(f"truncated binary STL: header promises {count} triangles, file holds {held}")


def _read_ascii(data: bytes) -> Shape:
    if not re.search(rb"endsolid", data[-4096:]):
        raise InputError("truncated ascii STL: no 'endsolid' line at the end")
    corners = _VERTEX.findall(data)
    if len(corners) % 3:
        raise InputError(f"ascii STL holds {len(corners)} vertex lines, not a multiple of 3")
    return _merge(np.array(corners, dtype=np.float64).reshape(-1, 3))


def _merge(corners: np.ndarray) -> Shape:
    """[3T, 3] triangle corners -> shared vertices [n, 3] and faces [T, 3]."""
    if len(corners) == 0:
        raise InputError("no triangles")
    points, inverse = np.unique(corners, axis=0, return_inverse=True)
    return make_shape(points, inverse.reshape(-1, 3))
