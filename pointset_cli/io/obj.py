"""Wavefront OBJ: `v` and `f` lines (polygons fan-triangulated, negative indices relative)."""

from __future__ import annotations

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.guard import decode_text
from pointset_cli.io.shape import Shape, fan_triangulate, make_shape
from pointset_cli.io.text import text_rows


def read_obj(data: bytes) -> Shape:
    """Parse OBJ bytes; `v x y z [w or r g b]` keeps x y z, `f a/b/c ...` keeps the vertex index."""
    lines = decode_text(data).splitlines()
    coords: list[list[str]] = []
    counts: list[int] = []
    flat: list[int] = []
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            continue
        if words[0] == "v":
            if len(words) < 4:
                raise InputError(f"line {number}: vertex needs 3 coordinates")
            coords.append(words[1:4])
        elif words[0] == "f":
            indices = [int(w.split("/", 1)[0]) for w in words[1:]]
            flat.extend(i if i > 0 else len(coords) + i + 1 for i in indices)  # 1-based, negatives resolved
            counts.append(len(indices))
    if not coords:
        raise InputError("no vertices ('v' lines)")
    flat_array = np.array(flat, dtype=np.int64)
    out = (flat_array < 1) | (flat_array > len(coords))
    if out.any():
        raise InputError(f"face index {int(flat_array[out][0])} out of range for {len(coords)} vertices (1-based)")
    faces = fan_triangulate(np.array(counts), flat_array - 1) if counts else None
    return make_shape(np.array(coords, dtype=np.float64), faces)


def encode_obj(points: np.ndarray) -> bytes:
    """OBJ bytes with one `v x y z` line per point ([n, 3])."""
    return text_rows(points, prefix="v ")
