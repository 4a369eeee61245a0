"""`pointset prepare` as a library: raw files -> one HDF5 dataset (schema v1).

Steps: collect input files -> read and sample each file (process pool; file i draws from
default_rng([seed, i]) so any worker count gives the same bytes) -> assign splits -> normalise
-> write atomically.

Labels and splits come from the folder layout: a file's class is the name of the folder holding
it, skipping a split folder (train, val, valid, test): `<class>/<split>/<file>` or `<class>/<file>`.
Files directly inside an input folder take the folder's own name as class. MNIST files carry
their own labels (classes "0".."9"); all their sets are train unless --val/--test-fraction say
otherwise. Sets without a split from the layout are drawn into val/test by the fractions; a layout
with train and test folders but no val gets its val sets drawn from its training sets.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import glob
import multiprocessing
import os
import re
import stat
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pointset_cli.version import __version__
from pointset_cli.data import normalize, sampling
from pointset_cli.data.schema import SPLITS, write_dataset
from pointset_cli.errors import InputError, PointsetError, UsageError
from pointset_cli.fsutil import check_writable

LAYOUT_SPLITS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
# Files a folder walk passes over: notes that ship beside data (PROVENANCE.txt is not an XYZ file).
DOC_FILE = re.compile(r"^(readme|license|licence|provenance|source|changelog|notice)", re.IGNORECASE)
MNIST_LABELS_FILE = re.compile(r"idx1-ubyte(\.gz)?$")
GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class PrepareOptions:
    points: int | None = None  # every set gets exactly this many points (None: keep own size)
    max_points: int = 2048  # cap on a set's own size; also the sample count for meshes
    sampler: str = "surface"  # surface | fps | poisson (meshes); fps also thins point sets
    normalize: str | None = None  # None: "none" for MNIST (already in [0, 1]^2), else "sphere"
    threshold: int = 127  # MNIST: pixels above it become points
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    split_from_layout: bool = True
    stratify: bool = False  # draw val/test in each class's proportion
    seed: int = 0
    workers: int = 1
    skip_bad: bool = False


class Source(NamedTuple):
    """One input file: its path, its name in the dataset, and what the layout says."""

    path: Path
    name: str  # relative to the input root
    label: str | None  # class from the folder layout; None for MNIST
    split: str | None  # split from the folder layout
    mnist: bool


class LoadedSet(NamedTuple):
    points: np.ndarray  # [n, D] float32, normalised per set (raw for "global"/"none")
    center: np.ndarray  # [D] float64
    scale: float
    name: str
    label: str
    split: str | None
    from_mesh: bool


@dataclass
class PrepareReport:
    """What `prepare` did: the summary `pointset prepare --format json` prints."""

    output: str
    n_sets: int
    n_files: int
    dim: int
    n_max: int
    classes: list[str]
    splits: dict[str, int]
    normalization: str
    sampler: str
    skipped: list[dict[str, str]] = field(default_factory=list)
    passed_over: list[dict[str, str]] = field(default_factory=list)  # folder entries that are not regular files

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _not_regular(path: Path) -> str | None:
    """What `path` is when it is not a regular file (a FIFO would block a read forever, a link to a
    device could read without end); None for a regular file or a link to one."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    return "not a regular file (" + next((what for test, what in kinds if test(mode)), "a special file") + ")"


def collect_inputs(inputs: list[str]) -> tuple[list[Source], list[dict[str, str]]]:
    """Expand files, folders (recursively, sorted) and globs into sources; duplicates are dropped.

    Returns the sources and the entries passed over in folders because they are not regular files
    ({"path", "reason"}). Raises InputError when an input does not exist or nothing is found in
    them, UsageError when none is given or a file named directly is not a regular file.
    """
    from pointset_cli.io import is_supported
    from pointset_cli.io.mnist import is_mnist_file

    found: dict[Path, Source] = {}
    passed_over: list[dict[str, str]] = []
    for arg in inputs:
        for path, root in _expand(arg):
            walked = root is not None
            if path.name.startswith(".") or DOC_FILE.match(path.name):
                continue
            special = _not_regular(path)
            if special:
                if not walked:
                    raise UsageError(special, path)
                passed_over.append({"path": str(path), "reason": special})
                continue
            if MNIST_LABELS_FILE.search(path.name):
                if walked:
                    continue  # read together with its images file
                raise UsageError("an MNIST labels file: give its images file (*-idx3-ubyte) instead", path)
            mnist = is_mnist_file(path)
            if walked and not (mnist or is_supported(path)):
                continue
            key = path.absolute()
            if key not in found:
                name = path.relative_to(root).as_posix() if root is not None else path.name
                label, split = (None, None) if mnist else _layout(key)
                found[key] = Source(path, name, label, split, mnist)
    if not inputs:
        raise UsageError("no inputs given")
    if not found:  # they exist (checked above) but hold nothing to read: an input problem, like a missing one
        raise InputError(f"no input files found in {' '.join(inputs)}")
    sources = list(found.values())
    if len({s.mnist for s in sources}) > 1:
        raise UsageError("cannot mix MNIST files with other shapes in one dataset")
    return sources, passed_over


def _expand(arg: str) -> list[tuple[Path, Path | None]]:
    """(file, root) pairs for one input argument: root is the folder a walked file was found in
    (its name in the dataset is relative to it), None for a file named directly or by a glob."""
    path = Path(arg)
    if arg == "-":
        raise UsageError("prepare reads files, folders and globs, not stdin (-)")
    if path.exists():
        matches = [path]
    elif GLOB_CHARS.search(arg):
        matches = [Path(p) for p in sorted(glob.glob(arg, recursive=True))]
        if not matches:
            raise InputError("no file matches this pattern", arg)
    else:
        raise InputError("no such file or folder", arg)
    out: list[tuple[Path, Path | None]] = []
    for match in matches:
        if not match.is_dir():
            out.append((match, None))
            continue
        for folder, subdirs, files in os.walk(match):
            subdirs.sort()
            out += [(Path(folder, name), match) for name in sorted(files)]
    return out


def _layout(path: Path) -> tuple[str, str | None]:
    """(class, split) from `<class>/<split>/<file>` or `<class>/<file>`."""
    parent = path.parent
    split = LAYOUT_SPLITS.get(parent.name.lower())
    if split is not None:
        parent = parent.parent
    return parent.name or "all", split


def prepare(
    inputs: list[str],
    out: Path,
    opts: PrepareOptions,
    force: bool = False,
    argv: list[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PrepareReport:
    """Read `inputs`, build the dataset and write it to `out`; on_progress(files_done, files_total).

    Raises UsageError for bad options or empty input, InputError for the first bad file (unless
    opts.skip_bad), OutputExistsError when `out` exists and not `force`. Nothing is written on failure.
    """
    _check_options(opts)
    out = Path(out)
    check_writable(out, force)
    sources, passed_over = collect_inputs(inputs)
    mnist = sources[0].mnist
    kind = opts.normalize or ("none" if mnist else "sphere")
    sets, skipped = _load_all(sources, opts, kind, on_progress)
    if not sets:
        raise InputError("no readable input files (all were skipped)", out)
    dims = {s.points.shape[1] for s in sets}
    if len(dims) > 1:
        first = next(s for s in sets if s.points.shape[1] != sets[0].points.shape[1])
        raise InputError(f"has {first.points.shape[1]}D points but other inputs are {sets[0].points.shape[1]}D", first.name)

    classes = [str(d) for d in range(10)] if mnist else sorted({s.label for s in sets})
    labels = np.array([classes.index(s.label) for s in sets], np.int32)
    split = assign_splits([s.split if opts.split_from_layout else None for s in sets], opts, labels)
    points = [s.points for s in sets]
    center = np.array([s.center for s in sets])
    scale = np.array([s.scale for s in sets])
    if kind == "global":
        points, center, scale = _normalize_global(points, split)

    sampler = _sampler_name(opts, mnist, any_mesh=any(s.from_mesh for s in sets))
    provenance = {
        "argv": list(argv if argv is not None else sys.argv),
        "version": __version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": [str(Path(i).absolute()) for i in inputs],
        "skipped": [f"{p}: {m}" for p, m in skipped],
    }
    attrs = {"normalization": kind, "sampler": sampler, "seed": opts.seed, "n_points": opts.points or 0,
             "max_points": opts.points or opts.max_points, "provenance": provenance}
    write_dataset(out, points, labels, [s.name for s in sets], split, classes, center, scale, attrs, force=force,
                  workers=opts.workers)
    return PrepareReport(
        output=str(out), n_sets=len(sets), n_files=len(sources) - len(skipped), dim=sets[0].points.shape[1],
        n_max=max(len(p) for p in points), classes=classes,
        splits={name: int((split == k).sum()) for k, name in enumerate(SPLITS)},
        normalization=kind, sampler=sampler, skipped=[{"path": p, "error": m} for p, m in skipped],
        passed_over=passed_over,
    )


def _check_options(opts: PrepareOptions) -> None:
    sampling.require_sampler(opts.sampler)
    if opts.points is not None and opts.points < 1:
        raise UsageError(f"--points must be at least 1, got {opts.points}")
    if opts.max_points < 1:
        raise UsageError(f"--max-points must be at least 1, got {opts.max_points}")
    if opts.normalize is not None and opts.normalize not in normalize.KINDS:
        raise UsageError(f"unknown normalisation {opts.normalize!r}; choose one of {', '.join(normalize.KINDS)}")
    if not 0 <= opts.threshold <= 255:
        raise UsageError(f"--threshold must lie in 0..255, got {opts.threshold}")
    fractions = (opts.val_fraction, opts.test_fraction)
    if min(fractions) < 0 or sum(fractions) > 1:
        raise UsageError("--val-fraction and --test-fraction must be >= 0 and sum to at most 1")
    if opts.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {opts.workers}")


def _sampler_name(opts: PrepareOptions, mnist: bool, any_mesh: bool) -> str:
    if mnist:
        return "mnist"
    if opts.sampler == "fps" or any_mesh:
        return opts.sampler
    return "points"


def assign_splits(layout: list[str | None], opts: PrepareOptions, labels: np.ndarray | None = None) -> np.ndarray:
    """Split codes [M] uint8: the layout's split where given, else drawn by the fractions with opts.seed.

    test_fraction draws from the sets without a layout split. val_fraction draws from those too and,
    when the layout has train but no val folders (ModelNet's train/test), from the layout's training
    sets as well, so best-checkpoint selection never looks at the test split. With opts.stratify,
    each draw takes every class (labels [M]) in its share, to within one set.
    """
    split = np.array([SPLITS.index(s) if s else 0 for s in layout], np.uint8)
    free = np.flatnonzero([s is None for s in layout])
    rng = np.random.default_rng(opts.seed)

    by_class = opts.stratify and labels is not None
    order = free[rng.permutation(len(free))]
    if by_class:
        order = stratified(order, labels[order], rng)
    n_test = round(opts.test_fraction * len(free))
    split[order[:n_test]] = SPLITS.index("test")
    layout_train = np.flatnonzero([s == "train" for s in layout]) if "val" not in layout else np.zeros(0, int)
    candidates = np.concatenate([order[n_test:], layout_train[rng.permutation(len(layout_train))]])
    if by_class:
        candidates = stratified(candidates, labels[candidates], rng)
    n_val = round(opts.val_fraction * (len(free) + len(layout_train)))
    split[candidates[:n_val]] = SPLITS.index("val")
    return split


def stratified(idx: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """idx [M] reordered so that every prefix holds each class in proportion to within one set.

    The j-th of a class's n members (in the given order) gets the key (j + u) / n, u ~ U[0, 1);
    sorting by key interleaves the classes evenly and keeps each class's own order.
    """
    key = np.empty(len(idx))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        key[members] = (np.arange(len(members)) + rng.uniform(size=len(members))) / len(members)
    return idx[np.argsort(key, kind="stable")]


def _normalize_global(
    points: list[np.ndarray], split: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """One centre and scale from the training sets, applied to every set."""
    train = [p for p, s in zip(points, split) if s == 0]
    if not train:
        raise UsageError("--normalize global needs a training split (every set is val or test)")
    center, scale = normalize.global_stats(train)
    out = [normalize.apply(p, center, scale).astype(np.float32) for p in points]
    return out, np.tile(center, (len(points), 1)), np.full(len(points), scale)


# --- reading (runs in worker processes) ---------------------------------------------------------

def _load_all(
    sources: list[Source], opts: PrepareOptions, kind: str, on_progress: Callable[[int, int], None] | None
) -> tuple[list[LoadedSet], list[tuple[str, str]]]:
    """Read every source (in a process pool when opts.workers > 1), keeping input order."""
    total = len(sources)
    tasks = list(enumerate(sources))
    n_chunks = min(total, opts.workers * 16)
    chunks = [tasks[i::n_chunks] for i in range(n_chunks)]  # strided: slow files spread over workers
    results: dict[int, tuple[list[LoadedSet], str | None]] = {}
    done = 0

    def collect(chunk_result: list[tuple[int, list[LoadedSet], str | None]]) -> None:
        nonlocal done
        for index, sets, error in chunk_result:
            if error is not None and not opts.skip_bad:
                raise InputError(error, sources[index].path)
            results[index] = (sets, error)
        done += len(chunk_result)
        if on_progress:
            on_progress(done, total)

    workers = min(opts.workers, n_chunks)
    if workers == 1:
        for chunk in chunks:
            collect(_load_chunk(chunk, opts, kind))
    else:
        with cf.ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
            futures = [pool.submit(_load_chunk, chunk, opts, kind) for chunk in chunks]
            try:
                for future in cf.as_completed(futures):
                    collect(future.result())
            except cf.process.BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                raise PointsetError(f"a reader process died (killed, or out of memory) with {total - done} of "
                                    f"{total} files unread; `--workers 1` names the file it stops at") from None
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    sets = [s for i in range(total) for s in results[i][0]]
    skipped = [(str(sources[i].path), results[i][1]) for i in range(total) if results[i][1] is not None]
    return sets, skipped


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork starts workers at once (no re-import). Workers only read files, so the progress bar's
    # refresh thread is harmless, but JAX's runtime threads can deadlock a forked child: once JAX
    # is imported (tests, notebooks), pay for fresh interpreters instead.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and "jax" not in sys.modules:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _load_chunk(
    chunk: list[tuple[int, Source]], opts: PrepareOptions, kind: str
) -> list[tuple[int, list[LoadedSet], str | None]]:
    """Read a chunk of files; a bad file yields (index, [], message) instead of raising."""
    out = []
    for index, source in chunk:
        try:
            out.append((index, load_source(source, opts, kind, np.random.default_rng([opts.seed, index])), None))
        except PointsetError as err:
            out.append((index, [], err.message))
        except (ValueError, OSError, EOFError) as err:
            out.append((index, [], f"cannot read: {err}"))
    return out


def load_source(source: Source, opts: PrepareOptions, kind: str, rng: np.random.Generator) -> list[LoadedSet]:
    """The sets of one file, sampled and (unless kind is "global") normalised per set."""
    if source.mnist:
        from pointset_cli.io.mnist import image_to_set, read_mnist

        images, digits = read_mnist(source.path)
        raw = [(image_to_set(img, opts.threshold), f"{source.name}#{i}", str(int(d)))
               for i, (img, d) in enumerate(zip(images, digits))]
        mesh = False
    else:
        from pointset_cli.io import read_shape

        shape = read_shape(source.path)
        mesh = shape.faces is not None and shape.points.shape[1] == 3  # 2D "meshes" are read as points
        pts = (sampling.sample_mesh(shape.points, shape.faces, opts.points or opts.max_points, opts.sampler, rng)
               if mesh else shape.points)
        raw = [(pts, source.name, source.label)]
    sets = []
    for pts, name, label in raw:
        target = opts.points or (opts.max_points if len(pts) > opts.max_points else len(pts))
        pts = sampling.resize_points(np.asarray(pts, np.float64), target, rng, fps=opts.sampler == "fps")
        center, scale = normalize.set_stats(pts, kind)
        sets.append(LoadedSet(normalize.apply(pts, center, scale).astype(np.float32), center, scale, name, label,
                              source.split, mesh))
    return sets
