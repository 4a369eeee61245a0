"""Read a collection of sets for `pointset eval` (a dataset HDF5, an .npy/.npz array or a folder)
and for `pointset sample --from` (also one point file, and the name of each set).

Every reader returns points [M, N, D] float32 and mask [M, N] bool; problems raise InputError
naming the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pointset_cli.errors import InputError, UsageError

HDF5_SUFFIXES = (".h5", ".hdf5")


def is_dataset(path: Path) -> bool:
    """Whether `path` names an HDF5 dataset (the one kind of collection with splits)."""
    return Path(path).suffix.lower() in HDF5_SUFFIXES


def read_sets(path: Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points [M, N, D] and mask [M, N] of every set at `path` (only `split` for an HDF5 dataset)."""
    path = Path(path)
    stdin = str(path) == "-"  # a pipe: `pointset sample RUN --format npz -o - | pointset eval --samples - ...`
    if not stdin and not path.exists():
        raise InputError("no such file or folder", path)
    if split is not None and not is_dataset(path):
        raise UsageError("a split applies only to HDF5 datasets", path)
    if stdin:
        points, mask = _read_array(path, sys.stdin.buffer.read())
    elif path.is_dir():
        points, mask, _ = _read_folder(path)
    elif is_dataset(path):
        points, mask = _read_hdf5(path, split)
    elif path.suffix.lower() in (".npy", ".npz"):
        points, mask = _read_array(path)
    else:
        raise InputError("expected a dataset .h5, an .npy/.npz array [M, N, D] or a folder of point files", path)
    return _checked(points, mask, path)


def _checked(points: np.ndarray, mask: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if len(points) == 0:
        raise InputError("holds no sets", path)
    if not np.isfinite(points[mask]).all():
        raise InputError("holds non-finite coordinates", path)
    return points, mask


def read_named_sets(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Points [M, N, D], mask [M, N] and a file-name stem per set of one point file, a folder of
    them or an .npy/.npz array (sets named set_0000, ...); HDF5 datasets are read by split instead."""
    from pointset_cli.io import POINT_SUFFIXES, read_shape

    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        points, mask, names = _read_folder(path)
    elif path.suffix.lower() in (".npy", ".npz"):
        points, mask = _read_array(path)
        names = [f"set_{i:04d}" for i in range(len(points))]
    elif path.suffix.lower() in POINT_SUFFIXES:
        shape = read_shape(path).points
        points, mask, names = shape[None].astype(np.float32), np.ones((1, len(shape)), bool), [path.stem]
    else:
        raise InputError(f"expected a point file ({', '.join(sorted(POINT_SUFFIXES))}), a folder of them, "
                         "an .npy/.npz array [M, N, D] or a dataset .h5", path)
    return (*_checked(points, mask, path), names)


def _read_hdf5(path: Path, split: str | None) -> tuple[np.ndarray, np.ndarray]:
    from pointset_cli.data.schema import SetDataset

    with SetDataset(path) as data:
        idx = data.indices(split)
        if split is not None and not len(idx):
            raise InputError(f"split '{split}' holds no sets; sets are in: {data.held_splits()}", path)
        points, mask, _ = data.read(idx)
    return points, mask


def _read_array(path: Path, data: bytes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An .npy [M, N, D] or an .npz holding one array (or `points`, with an optional `mask`), from
    `path` or from `data` (told apart by the zip signature); every header is checked against the
    bytes present before anything is allocated."""
    from pointset_cli.io.arrays import npz_arrays, parse_npy

    data = path.read_bytes() if data is None else data
    mask = None
    try:
        if data[:4] == b"PK\x03\x04" or path.suffix.lower() == ".npz":
            arrays = npz_arrays(data)
            key = "points" if "points" in arrays else next(iter(arrays)) if len(arrays) == 1 else None
            if key is None:
                raise InputError(f"npz holds {sorted(arrays)}; expected one array or one named 'points'", path)
            points = parse_npy(arrays[key]())
            if "mask" in arrays:
                mask = parse_npy(arrays["mask"]()).astype(bool)
        else:
            points = parse_npy(data)
    except InputError as err:
        raise InputError(err.message, path) from None
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"cannot read array: {err}", path) from err
    if points.ndim != 3 or points.shape[-1] not in (2, 3) or not np.issubdtype(points.dtype, np.number):
        raise InputError(f"expected a numeric array [M, N, D] with D 2 or 3, got {points.dtype} {points.shape}", path)
    if mask is None:
        mask = np.ones(points.shape[:2], bool)
    elif mask.shape != points.shape[:2]:
        raise InputError(f"mask has shape {mask.shape}, expected {points.shape[:2]}", path)
    return points.astype(np.float32), mask


def _read_folder(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from pointset_cli.io import POINT_SUFFIXES, read_shape

    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in POINT_SUFFIXES)
    if not files:
        raise InputError(f"holds no point files ({', '.join(sorted(POINT_SUFFIXES))})", path)
    sets = [read_shape(f).points for f in files]
    dims = {s.shape[1] for s in sets}
    if len(dims) > 1:
        raise InputError(f"point files mix dimensions {sorted(dims)}", path)
    n_max = max(len(s) for s in sets)
    points = np.zeros((len(sets), n_max, dims.pop()), np.float32)
    mask = np.zeros((len(sets), n_max), bool)
    for i, s in enumerate(sets):
        points[i, : len(s)], mask[i, : len(s)] = s, True
    return points, mask, [f.stem for f in files]
