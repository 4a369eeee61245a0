"""The one value every reader returns, and the checks that make it trustworthy."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pointset_cli.errors import InputError


class Shape(NamedTuple):
    """A point set or a triangle mesh read from a file.

    points: [n, D] float64, finite, n >= 1, D in {2, 3}; the vertices when `faces` is given.
    faces: [f, 3] int64 indices into `points`, or None for a file of points only.
    """

    points: np.ndarray
    faces: np.ndarray | None


MAX_COORDINATE = 1e15  # |x|^2 stays far inside float64 and x inside float32


def make_shape(points: np.ndarray, faces: np.ndarray | None = None) -> Shape:
    """Validate and convert to a Shape; raise InputError (without a path) naming what is wrong."""
    points = np.asarray(points)
    if points.ndim != 2:
        raise InputError(f"expected an [n, D] array of points, got shape {list(points.shape)}")
    n, dim = points.shape
    if n == 0:
        raise InputError("no points")
    if dim not in (2, 3):
        raise InputError(f"points have {dim} coordinates, expected 2 or 3")
    with np.errstate(all="ignore"):  # overflow to Inf is reported just below
        points = points.astype(np.float64, copy=False)
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        count = int(bad.sum())
        raise InputError(f"non-finite coordinates (NaN or Inf) in {count} of {n} points, first at point {first}")
    huge = np.abs(points).max(axis=1) > MAX_COORDINATE
    if huge.any():  # finite here, but squared distances overflow and float32 (the datasets) cannot hold them
        raise InputError(f"coordinates beyond +-{MAX_COORDINATE:g} in {int(huge.sum())} of {n} points, first at "
                         f"point {int(np.argmax(huge))}")
    if faces is None or len(faces) == 0:
        return Shape(points, None)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(f"expected [f, 3] triangle indices, got shape {list(faces.shape)}")
    out = (faces < 0) | (faces >= n)
    if out.any():
        raise InputError(f"face index {int(faces[out][0])} out of range for {n} vertices")
    return Shape(points, faces)


def fan_triangulate(counts: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Split polygons into triangles (v0, vi, vi+1).

    counts: [P] vertices per polygon; flat: [sum(counts)] their indices, concatenated.
    Returns [sum(counts - 2), 3] int64. A polygon with fewer than 3 vertices is an error.
    """
    counts = np.asarray(counts, dtype=np.int64)
    flat = np.asarray(flat, dtype=np.int64)
    if counts.size and counts.min() < 3:
        j = int(np.argmax(counts < 3))
        raise InputError(f"face {j} has {int(counts[j])} vertices, needs at least 3")
    if int(counts.sum()) != flat.size:
        raise InputError(f"faces list {int(counts.sum())} vertex indices, file holds {flat.size}")
    if counts.size and (counts == 3).all():
        return flat.reshape(-1, 3)
    starts = np.cumsum(counts) - counts  # [P]
    ntri = counts - 2  # [P]
    first = np.repeat(starts, ntri)  # [T] index into flat of each triangle's polygon start
    t = np.arange(first.size) - np.repeat(np.cumsum(ntri) - ntri, ntri)  # [T] triangle number in its polygon
    return np.stack([flat[first], flat[first + t + 1], flat[first + t + 2]], axis=1)
