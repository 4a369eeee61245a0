"""NumPy files: .npy holding an [n, D] array, .npz holding `points` (or exactly one array).

Pickled (object) arrays are refused. The .npy header is checked against the bytes present
before the array is built, so a header promising a huge shape fails fast.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
from collections.abc import Callable

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.guard import DECODED_LIMIT
from pointset_cli.io.shape import Shape, make_shape

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def parse_npy(data: bytes) -> np.ndarray:
    """The numeric array stored in .npy bytes (no pickles, size checked before building)."""
    if not data.startswith(_NPY_MAGIC):
        raise InputError("not an NPY file (bad magic)")
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(stream)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InputError(f"NPY array of dtype {dtype} is not numeric (pickled objects are refused)")
    if any(d < 0 for d in shape):
        raise InputError(f"negative dimension in NPY shape {shape}")
    count = math.prod(shape)  # Python ints: a huge shape cannot wrap around to a small count
    held = (len(data) - stream.tell()) // dtype.itemsize
    if count > held:
        raise InputError(f"truncated NPY: header promises {count} values, file holds {held}")
    flat = np.frombuffer(data, dtype, count, stream.tell())
    return flat.reshape(shape, order="F" if fortran else "C")


def read_npy(data: bytes) -> Shape:
    """Parse .npy bytes holding [n, D] points."""
    return make_shape(parse_npy(data))


def npz_arrays(data: bytes, limit: int = DECODED_LIMIT) -> dict[str, Callable[[], bytes]]:
    """The members of .npz bytes: array name -> a function reading its .npy bytes. A member whose
    stated size passes `limit` is refused before it is inflated (zipfile inflates no further than
    the stated size)."""
    if not data.startswith(_ZIP_MAGIC):
        raise InputError("not an NPZ file (not a zip archive)")
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        if info.file_size > limit:
            raise InputError(f"NPZ member {info.filename} inflates to {info.file_size:,} bytes, more than the "
                             f"{limit:,} a file may hold")
        members[info.filename[:-4]] = functools.partial(archive.read, info.filename)
    return members


def read_npz(data: bytes) -> Shape:
    """Parse .npz bytes: the array named `points`, else the only array."""
    arrays = npz_arrays(data)
    if "points" in arrays:
        name = "points"
    elif len(arrays) == 1:
        name = next(iter(arrays))
    else:
        keys = ", ".join(list(arrays)[:5]) or "none"
        raise InputError(f"NPZ has no 'points' array and {len(arrays)} arrays to choose from ({keys})")
    return make_shape(parse_npy(arrays[name]()))


def encode_npy(points: np.ndarray) -> bytes:
    """.npy bytes for an array."""
    buffer = io.BytesIO()
    np.save(buffer, points, allow_pickle=False)
    return buffer.getvalue()


def encode_npz(points: np.ndarray) -> bytes:
    """.npz bytes holding the array as `points` (compressed)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, points=points)
    return buffer.getvalue()
