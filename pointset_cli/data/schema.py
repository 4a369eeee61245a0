"""The HDF5 dataset file (schema v1): writing it atomically, opening it read-only, validating it.

Layout (M sets, N_max = largest set, D = 2 or 3):
  points  float32 [M, N_max, D]  chunked one set per chunk, gzip; rows past a set's size are zero
  sizes   int32   [M]            the mask is arange(N_max) < sizes
  labels  int32   [M]            index into attrs["classes"]
  names   str     [M]            source file relative to its input root ("#<i>" marks a set in a file)
  split   uint8   [M]            0 train, 1 val, 2 test (attrs["splits"])
  center  float32 [M, D], scale float32 [M]: source units = points * scale + center
Root attrs: schema_version, classes, splits, dim, normalization, sampler, seed, n_points (0 = sets
keep their own size), max_points, provenance (JSON string).
"""

from __future__ import annotations

import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pointset_cli.data.normalize import KINDS, invert
from pointset_cli.errors import InputError, PointsetError, UsageError
from pointset_cli.fsutil import atomic_path

SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
SAMPLER_NAMES = ("surface", "fps", "poisson", "points", "mnist")
REQUIRED_ATTRS = ("schema_version", "classes", "splits", "dim", "normalization", "sampler", "seed",
                  "n_points", "max_points", "provenance")
# name -> (dtype, shape as a function of (M, N_max, D))
DATASETS: dict[str, tuple[np.dtype, Any]] = {
    "points": (np.dtype(np.float32), lambda m, n, d: (m, n, d)),
    "sizes": (np.dtype(np.int32), lambda m, n, d: (m,)),
    "labels": (np.dtype(np.int32), lambda m, n, d: (m,)),
    "split": (np.dtype(np.uint8), lambda m, n, d: (m,)),
    "center": (np.dtype(np.float32), lambda m, n, d: (m, d)),
    "scale": (np.dtype(np.float32), lambda m, n, d: (m,)),
}
# HDF5's own filters and h5py's LZF: deflate, shuffle, fletcher32, szip, nbit, scaleoffset, lzf.
BUILTIN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})
SCAN_BLOCK = 512  # sets read at a time by `validate`
GZIP_LEVEL = 4


class SetDataset:
    """A prepared dataset, open read-only; the layout is checked on open (values by `validate`).

    Use as a context manager or call `close()`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = _open(self.path)
        try:
            self._check_layout()
        except BaseException:
            self._file.close()
            raise
        f = self._file
        self.attrs: dict[str, Any] = {k: _attr_value(v) for k, v in f.attrs.items()}
        self.n_sets, self.n_max, self.dim = (int(x) for x in f["points"].shape)
        self.classes: list[str] = list(self.attrs["classes"])
        self.normalization: str = self.attrs["normalization"]
        self._sizes = f["sizes"][:]
        self._labels = f["labels"][:]
        self._split = f["split"][:]
        self._center = f["center"][:].astype(np.float64)
        self._scale = f["scale"][:].astype(np.float64)
        try:
            self._check_values()
        except BaseException:
            self._file.close()
            raise

    def _check_layout(self) -> None:
        f = self._file
        missing = [k for k in (*DATASETS, "names") if k not in f]
        if missing:
            raise InputError(f"not a pointset dataset: missing dataset {missing[0]!r}", self.path)
        absent = [k for k in REQUIRED_ATTRS if k not in f.attrs]
        if absent:
            raise InputError(f"not a pointset dataset: missing attribute {absent[0]!r}", self.path)
        version = _attr_value(f.attrs["schema_version"])
        if version != SCHEMA_VERSION:
            raise InputError(f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})", self.path)
        if f["points"].ndim != 3:
            raise InputError(f"points has shape {f['points'].shape}, expected [M, N_max, D]", self.path)
        m, n, d = f["points"].shape
        for name, (dtype, shape_of) in DATASETS.items():
            ds = f[name]
            if ds.dtype != dtype:
                raise InputError(f"dataset {name!r} has dtype {ds.dtype}, expected {dtype}", self.path)
            if ds.shape != shape_of(m, n, d):
                raise InputError(f"dataset {name!r} has shape {ds.shape}, expected {shape_of(m, n, d)}", self.path)
        points = f["points"]
        if points.chunks != (1, n, d) or points.id.get_num_chunks() != m:
            # One stored chunk per set, as write_dataset makes them: a header cannot promise more sets
            # than the file holds bytes for (unstored chunks would read as zeros, without end).
            stored = points.id.get_num_chunks() if points.chunks else "no"
            raise InputError(f"points claims {m:,} sets but stores {stored} chunks (one per set expected)",
                             self.path)
        if h5py.check_string_dtype(f["names"].dtype) is None or f["names"].shape != (m,):
            raise InputError(f"dataset 'names' must be {m} strings", self.path)
        if d != _attr_value(f.attrs["dim"]) or d not in (2, 3):
            raise InputError(f"points have dimension {d} but attrs say dim={_attr_value(f.attrs['dim'])}", self.path)
        if _attr_value(f.attrs["splits"]) != list(SPLITS):
            raise InputError(f"attribute 'splits' must be {list(SPLITS)}", self.path)
        classes = _attr_value(f.attrs["classes"])
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise InputError("attribute 'classes' must be a list of class names", self.path)
        if _attr_value(f.attrs["normalization"]) not in KINDS:
            raise InputError(f"unknown normalization {_attr_value(f.attrs['normalization'])!r}", self.path)

    def _check_values(self) -> None:
        """The per-set records every command relies on (the points themselves: `validate`)."""
        sizes, labels, split = self._sizes, self._labels, self._split
        if len(sizes) and (sizes.min() < 0 or sizes.max() > self.n_max):
            raise InputError(f"sizes must lie in [0, N_max={self.n_max}], found {sizes.min()}..{sizes.max()}",
                             self.path)
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise InputError(f"labels must lie in [0, {len(self.classes)}) (number of classes), found "
                             f"{labels.min()}..{labels.max()}", self.path)
        if len(split) and split.max() >= len(SPLITS):
            raise InputError(f"split values must be 0, 1 or 2, found {int(split.max())}", self.path)
        if not (np.isfinite(self._scale).all() and (self._scale > 0).all() and np.isfinite(self._center).all()):
            raise InputError("center/scale must be finite with scale > 0", self.path)

    def indices(self, split: str | None = None) -> np.ndarray:
        """Sorted int64 indices of the sets in `split` (all sets for None)."""
        if split is None:
            return np.arange(self.n_sets, dtype=np.int64)
        return np.flatnonzero(self._split == _split_code(split)).astype(np.int64)

    def scored_split(self, split: str | None = None) -> str:
        """`split`, or by default the split `eval` and `sample --reconstruct` use: test when it
        holds sets, else val (a dataset prepared with --val-fraction only). An unknown name is a
        UsageError."""
        if split is not None:
            if split not in SPLITS:
                raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
            return split
        return "val" if not len(self.indices("test")) and len(self.indices("val")) else "test"

    def held_splits(self) -> str:
        """The splits that hold sets, with their counts: "train (40), val (10)" ("no split" for none)."""
        counts = {name: len(self.indices(name)) for name in SPLITS}
        return ", ".join(f"{name} ({count})" for name, count in counts.items() if count) or "no split"

    def sizes(self, split: str | None = None) -> np.ndarray:
        """int32 [m] point counts of the sets in `split`."""
        return self._sizes[self.indices(split)]

    def labels(self, split: str | None = None) -> np.ndarray:
        """int32 [m] class indices of the sets in `split`."""
        return self._labels[self.indices(split)]

    def read(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sets `idx` [b] in the given order: points [b, N_max, D] float32, mask [b, N_max] bool, labels [b] int32."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_sets):
            raise IndexError(f"set index out of range [0, {self.n_sets})")
        # h5py wants increasing unique indices: read those, then restore the caller's order.
        uniq, inverse = np.unique(idx, return_inverse=True)
        points = self._file["points"][uniq][inverse] if idx.size else np.zeros((0, self.n_max, self.dim), np.float32)
        mask = np.arange(self.n_max)[None, :] < self._sizes[idx][:, None]
        return points, mask, self._labels[idx]

    def names(self, idx: np.ndarray) -> list[str]:
        """Source names of sets `idx`."""
        return self._file["names"].asstr()[:][np.asarray(idx, dtype=np.int64).reshape(-1)].tolist()

    def denormalize(self, points: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Map points [b, n, D] of sets `idx` [b] back to source units (float64)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        return invert(points, self._center[idx][:, None, :], self._scale[idx][:, None, None])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SetDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_dataset(
    path: Path,
    points_list: list[np.ndarray],
    labels: np.ndarray,
    names: list[str],
    split: np.ndarray,
    classes: list[str],
    center: np.ndarray,
    scale: np.ndarray,
    attrs: dict[str, Any],
    force: bool = False,
    workers: int = 1,
) -> None:
    """Write M sets (points_list[i] [n_i, D], already normalised) atomically to `path`.

    `attrs` gives normalization, sampler, seed, n_points, max_points and provenance (dict or JSON
    string); schema_version, classes, splits and dim are filled in. `workers` threads compress
    the sets. Raises ValueError on inputs that would break the schema.
    """
    m = len(points_list)
    if m == 0:
        raise ValueError("no sets to write")
    dim = points_list[0].shape[1]
    sizes = np.array([len(p) for p in points_list], dtype=np.int32)
    n_max = max(int(sizes.max()), 1)  # HDF5 chunks cannot be empty, even if every set is
    labels, split = np.asarray(labels, np.int32), np.asarray(split, np.uint8)
    center, scale = np.asarray(center, np.float32).reshape(m, dim), np.asarray(scale, np.float32).reshape(m)
    _check_inputs(points_list, dim, labels, names, split, classes, center, scale, attrs)
    provenance = attrs["provenance"]
    try:
        with atomic_path(Path(path), force) as tmp, h5py.File(tmp, "w") as f:
            points = f.create_dataset("points", shape=(m, n_max, dim), dtype=np.float32, chunks=(1, n_max, dim),
                                      compression="gzip", compression_opts=GZIP_LEVEL, shuffle=True)
            # Compressing here instead of in HDF5's filter pipeline lets threads share the work
            # (zlib releases the GIL); the chunks are byte-for-byte what the pipeline would write.
            with ThreadPoolExecutor(workers) as pool:
                mapper = pool.map if workers > 1 else map
                for i, chunk in enumerate(mapper(lambda p: _encode_chunk(p, n_max), points_list)):
                    points.id.write_direct_chunk((i, 0, 0), chunk)
            f.create_dataset("sizes", data=sizes)
            f.create_dataset("labels", data=labels)
            f.create_dataset("names", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
            f.create_dataset("split", data=split)
            f.create_dataset("center", data=center)
            f.create_dataset("scale", data=scale)
            f.attrs.update({
                "schema_version": SCHEMA_VERSION, "classes": list(classes), "splits": list(SPLITS), "dim": dim,
                "normalization": attrs["normalization"], "sampler": attrs["sampler"], "seed": int(attrs["seed"]),
                "n_points": int(attrs["n_points"]), "max_points": int(attrs["max_points"]),
                "provenance": provenance if isinstance(provenance, str) else json.dumps(provenance),
            })
    except RuntimeError as err:  # h5py's report of a failed write (full disk, file size limit)
        raise PointsetError(f"cannot write: {str(err).splitlines()[0]}", path) from None


def _encode_chunk(points: np.ndarray, n_max: int) -> bytes:
    """One set [n, D] zero-padded to [N_max, D] float32, then HDF5's shuffle and deflate filters."""
    padded = np.zeros((n_max, points.shape[1]), np.float32)
    padded[: len(points)] = points
    shuffled = padded.view(np.uint8).reshape(-1, 4).T.tobytes()  # byte k of every float, k = 0..3
    return zlib.compress(shuffled, GZIP_LEVEL)


def _check_inputs(points_list, dim, labels, names, split, classes, center, scale, attrs) -> None:
    m = len(points_list)
    if dim not in (2, 3):
        raise ValueError(f"points must be 2D or 3D, got D={dim}")
    for i, p in enumerate(points_list):
        if p.ndim != 2 or p.shape[1] != dim:
            raise ValueError(f"set {i} has shape {p.shape}, expected [n, {dim}]")
        if not np.isfinite(p).all():
            raise ValueError(f"set {i} ({names[i]}) holds non-finite coordinates")
    if not (len(labels) == len(names) == len(split) == m):
        raise ValueError("points, labels, names and split must have one entry per set")
    if m and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"labels must lie in [0, {len(classes)})")
    if m and split.max() >= len(SPLITS):
        raise ValueError("split values must be 0 (train), 1 (val) or 2 (test)")
    if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("center must be finite and scale finite and positive")
    if attrs["normalization"] not in KINDS or attrs["sampler"] not in SAMPLER_NAMES:
        raise ValueError(f"bad normalization/sampler attrs: {attrs['normalization']!r}, {attrs['sampler']!r}")


def validate(path: Path) -> dict[str, Any]:
    """Check every value of a dataset file; return the summary `pointset info` prints.

    Raises InputError naming the file and the first problem found.
    """
    path = Path(path)
    with SetDataset(path) as ds:
        f = ds._file
        sizes, labels, split = ds._sizes, ds._labels, ds._split
        lo, hi = _scan_points(f["points"], sizes, path)
        try:
            provenance = json.loads(ds.attrs["provenance"])
        except (TypeError, json.JSONDecodeError):
            raise InputError("attribute 'provenance' is not a JSON string", path) from None
        return {
            "path": str(path),
            "schema_version": SCHEMA_VERSION,
            "n_sets": ds.n_sets,
            "n_max": ds.n_max,
            "dim": ds.dim,
            "classes": ds.classes,
            "class_counts": {
                s: np.bincount(labels[split == k], minlength=len(ds.classes)).tolist() for k, s in enumerate(SPLITS)
            },
            "splits": {s: int((split == k).sum()) for k, s in enumerate(SPLITS)},
            "sizes": _size_summary(sizes),
            "range": {"min": lo.tolist(), "max": hi.tolist()},
            **{k: ds.attrs[k] for k in ("normalization", "sampler", "seed", "n_points", "max_points")},
            "provenance": provenance,
        }


def _scan_points(points: h5py.Dataset, sizes: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check finite real points and zero padding block by block; return per-axis min and max [D]."""
    m, n_max, dim = points.shape
    lo, hi = np.full(dim, np.inf), np.full(dim, -np.inf)
    for start in range(0, m, SCAN_BLOCK):
        block = points[start : start + SCAN_BLOCK]
        mask = np.arange(n_max)[None, :] < sizes[start : start + SCAN_BLOCK, None]
        real = block[mask]
        if not np.isfinite(real).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=(1, 2)))[0])
            raise InputError(f"set {bad} holds non-finite coordinates", path)
        if np.any(block[~mask]):
            bad = start + int(np.flatnonzero(np.any(block * ~mask[..., None] != 0, axis=(1, 2)))[0])
            raise InputError(f"set {bad} has non-zero padding past its size", path)
        if real.size:
            lo, hi = np.minimum(lo, real.min(axis=0)), np.maximum(hi, real.max(axis=0))
    return lo, hi


def _size_summary(sizes: np.ndarray, bins: int = 10) -> dict[str, Any]:
    if not len(sizes):
        return {"min": 0, "mean": 0.0, "max": 0, "histogram": {"counts": [], "edges": []}}
    counts, edges = np.histogram(sizes, bins=bins if sizes.min() < sizes.max() else 1)
    return {
        "min": int(sizes.min()), "mean": float(sizes.mean()), "max": int(sizes.max()),
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
    }


def _split_code(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS.index(split)


def _open(path: Path) -> h5py.File:
    if str(path) == "-":
        raise UsageError("an HDF5 dataset cannot be read from stdin (-); give its path", path)
    if not path.is_file():
        raise InputError("no such file", path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError("not an HDF5 file (or it is truncated)", path) from None
    try:
        _check_self_contained(f, path)
    except BaseException:
        f.close()
        raise
    return f


def _check_self_contained(f: h5py.File, path: Path) -> None:
    """Refuse an HDF5 file that reaches outside itself or loops: every member of its root must be a
    hard-linked dataset holding its own bytes (no external, soft or virtual links, no external raw
    storage) through filters HDF5 itself decodes, as `write_dataset` makes them. Checked before any
    member is read."""
    for name in f:
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise InputError(f"member {name!r} is an external link (to {link.filename}); a dataset file must "
                             "hold its own data", path)
        if isinstance(link, h5py.SoftLink):
            raise InputError(f"member {name!r} is a soft link (to {link.path}); links are not read", path)
        obj = f.get(name)
        if not isinstance(obj, h5py.Dataset):
            raise InputError(f"member {name!r} is a group, not a dataset", path)
        if obj.is_virtual:
            raise InputError(f"dataset {name!r} is virtual (its data lives in other files); it is not read", path)
        if obj.external:
            raise InputError(f"dataset {name!r} keeps its bytes in an external file ({obj.external[0][0]!r}); "
                             "it is not read", path)
        plist = obj.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            code, _, _, label = plist.get_filter(i)
            if code not in BUILTIN_FILTERS:  # decoding it would load a plugin library named by the file
                raise InputError(f"dataset {name!r} is stored with HDF5 filter {code} "
                                 f"({label.decode(errors='replace') or 'unnamed'}), which pointset does not decode",
                                 path)


def _attr_value(value: Any) -> Any:
    """h5py attribute -> plain Python (str, int, float, list of str)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_attr_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
