"""Sets as files: one file per set (PLY binary or ascii, OBJ point list, XYZ, NPY, NPZ), named after
where the set came from; or all sets in one file: an HDF5 dataset, an NPZ (points [M, S, D], mask
[M, S], sizes [M], names [M]) or an NPY [M, n, D] of equal-sized sets, the forms `eval --samples` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.errors import UsageError
from pointset_cli.fsutil import atomic_path, check_writable, make_folder
from pointset_cli.run.generate import SetCollection

SET_FORMATS = ("ply", "obj", "xyz", "npy", "npz", "h5")


def write_sets(sets: SetCollection, out: Path, fmt: str, binary: bool = True, force: bool = False) -> list[Path]:
    """One file per set in folder `out`, or one file holding them all when `out` ends in .h5 (or fmt
    is "h5"), .npz or .npy; returns the paths.

    Every target is checked before anything is written, so a refusal leaves nothing half-done.
    """
    from pointset_cli.io import write_points

    if fmt not in SET_FORMATS:
        raise UsageError(f"unknown format {fmt!r} (use {', '.join(SET_FORMATS)})")
    if str(out) == "-":
        return _write_stdout(sets, fmt, binary)
    if fmt == "h5":
        path = out if out.suffix in (".h5", ".hdf5") else out / "sets.h5"
        make_folder(path.parent)
        _write_h5(sets, path, force)
        return [path]
    if fmt in ("npy", "npz") and out.suffix.lower() == f".{fmt}":
        make_folder(out.parent)
        _write_array(sets, out, fmt, force)
        return [out]
    make_folder(out)
    paths = [out / f"{name}.{fmt}" for name in sets.names]
    for p in paths:
        check_writable(p, force)
    for p, pts, m in zip(paths, sets.points, sets.mask, strict=True):
        write_points(p, pts[m].astype(np.float32), fmt, binary=binary, force=force)
    return paths


def _write_stdout(sets: SetCollection, fmt: str, binary: bool) -> list[Path]:
    """`--out -`: all sets as one npz/npy stream, or a single set in any point format."""
    import sys

    from pointset_cli.io import write_points

    if fmt in ("npz", "npy"):
        _save_array(sets, sys.stdout.buffer, fmt, Path("-"))
        sys.stdout.buffer.flush()
    elif len(sets.names) == 1 and fmt != "h5":
        write_points(Path("-"), sets.points[0][sets.mask[0]].astype(np.float32), fmt, binary=binary)
    else:
        raise UsageError(f"--out - (stdout) takes all sets as npz or npy, or one set (-n 1) as {fmt}; "
                         f"{'an HDF5 file needs a path' if fmt == 'h5' else f'{len(sets.names)} sets asked'}")
    return [Path("-")]


def _write_array(sets: SetCollection, path: Path, fmt: str, force: bool) -> None:
    """All sets in one .npz (padded, with mask, sizes and names) or one .npy (equal sizes only)."""
    with atomic_path(path, force) as tmp, open(tmp, "wb") as f:
        _save_array(sets, f, fmt, path)


def _save_array(sets: SetCollection, f: Any, fmt: str, path: Path) -> None:
    sizes = sets.mask.sum(axis=1)
    if fmt == "npy" and len(set(sizes.tolist())) > 1:
        raise UsageError(f"sets of {sizes.min()}..{sizes.max()} points do not fit one .npy array [M, n, D] "
                         "(padding would read as points): use npz, which keeps a mask", path)
    points = sets.points.astype(np.float32)
    if fmt == "npz":
        np.savez(f, points=points, mask=sets.mask, sizes=sizes.astype(np.int32), names=np.array(sets.names))
    else:
        np.save(f, np.stack([p[m] for p, m in zip(points, sets.mask, strict=True)]))


def _write_h5(sets: SetCollection, path: Path, force: bool) -> None:
    from pointset_cli.version import __version__
    from pointset_cli.data.schema import write_dataset

    n, dim = len(sets.names), sets.points.shape[-1]
    write_dataset(
        path, [p[m] for p, m in zip(sets.points, sets.mask, strict=True)], sets.labels, sets.names,
        np.zeros(n, np.uint8), sets.classes, np.zeros((n, dim)), np.ones(n),
        {"normalization": "none", "sampler": "points", "seed": 0, "n_points": 0,
         "max_points": int(sets.mask.sum(1).max()),
         "provenance": {"tool": f"pointset {__version__}", "normalized_units": sets.normalized}},
        force=force,
    )


