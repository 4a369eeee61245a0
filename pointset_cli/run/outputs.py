"""Sets as files: one file per set (PLY binary or ascii, OBJ point list, XYZ, NPY, NPZ), named after
where the set came from, or one HDF5 file in the dataset schema.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointset_cli.errors import UsageError
from pointset_cli.fsutil import check_writable, make_folder
from pointset_cli.run.generate import SetCollection

SET_FORMATS = ("ply", "obj", "xyz", "npy", "npz", "h5")


def write_sets(sets: SetCollection, out: Path, fmt: str, binary: bool = True, force: bool = False) -> list[Path]:
    """One file per set in folder `out` (or one dataset file for fmt "h5"); returns the paths.

    Every target is checked before anything is written, so a refusal leaves nothing half-done.
    """
    from pointset_cli.io import write_points

    if fmt not in SET_FORMATS:
        raise UsageError(f"unknown format {fmt!r} (use {', '.join(SET_FORMATS)})")
    if fmt == "h5":
        path = out if out.suffix in (".h5", ".hdf5") else out / "sets.h5"
        make_folder(path.parent)
        _write_h5(sets, path, force)
        return [path]
    make_folder(out)
    paths = [out / f"{name}.{fmt}" for name in sets.names]
    for p in paths:
        check_writable(p, force)
    for p, pts, m in zip(paths, sets.points, sets.mask, strict=True):
        write_points(p, pts[m].astype(np.float32), fmt, binary=binary, force=force)
    return paths


def _write_h5(sets: SetCollection, path: Path, force: bool) -> None:
    from pointset_cli import __version__
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


