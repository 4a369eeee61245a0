"""The run folder: layout, lock, env.json, data.json and metrics.jsonl.

```
RUN/config.yaml     resolved config (data.path relative to RUN)
RUN/env.json        versions, devices, git commit, command line
RUN/data.json       what sampling needs of the data: dim, n_max, classes, normalisation
RUN/metrics.jsonl   one JSON object per log step / evaluation
RUN/events.out.tfevents.*  the same rows as TensorBoard scalars, a file per session (run.events)
RUN/checkpoints/    Orbax: latest/ and best/
RUN/prior.npz       latent prior (autoencoders)
RUN/loss.png        loss curves, refreshed at each evaluation
RUN/eval.json       the last `pointset eval RUN`
RUN/.lock           pid of the trainer that owns the folder (flocked while it runs)
RUN/.pointset-run   marks a folder pointset made: the only kind `--overwrite` may replace
```
`sample` and `export` write their default outputs into the run too (samples/, reconstructions/,
params.npz, stablehlo/).
Without a folder named, `pointset train` starts runs/<model>-N; runs/latest links to the newest run
started in runs/ (`choose_run_dir`, `point_latest`).
No JAX here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pointset_cli.errors import InputError, PointsetError, UsageError
from pointset_cli.fsutil import atomic_path
from pointset_cli.run.events import FILE_PREFIX as EVENTS_PREFIX


def _child(name: str) -> property:
    return property(lambda self: self.root / name)


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where each record of a run lives (see the module docstring)."""

    root: Path
    config = _child("config.yaml")
    env = _child("env.json")
    data_info = _child("data.json")
    metrics = _child("metrics.jsonl")
    checkpoints = _child("checkpoints")
    prior = _child("prior.npz")
    loss_curve = _child("loss.png")
    eval_json = _child("eval.json")
    lock = _child(".lock")
    marker = _child(".pointset-run")
    replaced = _child(".replaced")


def open_run(path: str | Path) -> RunPaths:
    """An existing, trained run folder (has config.yaml and data.json), else an input error."""
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise InputError("no such run folder", paths.root)
    for needed in (paths.config, paths.data_info):
        if not needed.is_file():
            raise InputError(f"not a run folder (no {needed.name})", paths.root)
    return paths


def _holder(path: Path) -> int:
    """The pid written in a lock file (0 when it is empty or unreadable)."""
    try:
        return int(path.read_text().strip() or "0")
    except (OSError, ValueError):
        return 0


def _take_lock(paths: RunPaths, warn: Callable[[str], None]) -> int:
    """An fd on RUN/.lock holding an exclusive flock, our pid written in it; PointsetError if held.

    The kernel drops a flock when its process dies, so a lock left by a kill -9 is free at once
    (its file, still naming the dead pid, is taken over with a warning), and no two trainers can
    both hold it: the check and the taking are one system call.
    """
    for _ in range(8):
        try:
            fd = os.open(paths.lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as err:
            raise PointsetError(f"cannot write: {err.strerror or err}", paths.root) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = _holder(paths.lock)
            raise PointsetError(f"another trainer (pid {owner or 'unknown'}) is using this run folder",
                                paths.root) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(paths.lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder removed the file as we opened it: lock the new one instead
            os.close(fd)
            continue
        stale = _holder(paths.lock)
        if stale and stale != os.getpid():
            warn(f"warning: {paths.lock}: stale lock of pid {stale} (no longer running) taken over")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    raise PointsetError("cannot take the run folder's lock", paths.lock)


@contextlib.contextmanager
def run_lock(paths: RunPaths, warn: Callable[[str], None] = lambda text: None) -> Iterator[None]:
    """Hold RUN/.lock (an exclusive flock, our pid inside) for the block; a live holder refuses the run.

    A folder the block created and left empty (the run failed before writing anything) is removed.
    """
    created = not paths.root.exists()
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PointsetError(f"cannot create the run folder: {err.strerror or err}", paths.root) from None
    fd = _take_lock(paths, warn)
    try:
        yield
    finally:
        paths.lock.unlink(missing_ok=True)  # while still held: a waiting opener sees the inode change
        os.close(fd)
        if created and not any(paths.root.iterdir()):
            paths.root.rmdir()


# What pointset itself writes in a run folder (and EVENTS_PREFIX*): `--overwrite` replaces a folder
# holding nothing else.
OWN_ENTRIES = frozenset({"config.yaml", "env.json", "data.json", "metrics.jsonl", "checkpoints", "prior.npz",
                         "loss.png", "eval.json", ".lock", ".pointset-run", ".replaced", "samples",
                         "reconstructions", "params.npz", "stablehlo"})


def is_run_folder(paths: RunPaths) -> bool:
    """Whether pointset made this folder: its marker, or the records of a run of an earlier version."""
    return paths.marker.is_file() or all(p.exists() for p in (paths.config, paths.data_info, paths.checkpoints))


def run_of_config(config_file: str | Path | None) -> Path | None:
    """The run folder a config file belongs to (the config.yaml of a run pointset wrote), else None."""
    if config_file is None:
        return None
    paths = RunPaths(Path(config_file).parent)
    return paths.root if Path(config_file).name == paths.config.name and is_run_folder(paths) else None


RUNS = Path("runs")  # where `pointset train` puts a run without --run-dir (in the working folder)
LATEST = "latest"  # RUNS/latest: a relative symlink to the newest run started there


def new_run_dir(model: str, parent: Path = RUNS) -> Path:
    """parent/<model>-N for a new run, N one past the highest taken (1 for the first); nothing is created.

    Numbers rather than timestamps: short to type (`runs/tspn-3`), no clock or time zone, and two runs
    started within a second still get two names. One past the highest rather than the lowest free
    number, so a deleted run's number is never reused and a higher number is always a newer run.
    """
    prefix = f"{model}-"
    taken = [int(p.name[len(prefix):]) for p in parent.iterdir()
             if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()] if parent.is_dir() else []
    return parent / f"{prefix}{max(taken, default=0) + 1}"


def choose_run_dir(run_dir: Path | None, config_file: Path | None, name: str, model: str, resume: bool) -> Path:
    """The folder `pointset train` writes, the first that applies: --run-dir; the run whose own
    config.yaml is --config; runs/NAME for a named run (config `name`, --name); with --resume, the
    run runs/latest points at; else a new runs/<model>-N (`new_run_dir`).

    It depends only on what exists before training starts, so the processes of a multi-process run,
    which all choose before any of them creates the folder, choose the same one.
    """
    if run_dir is not None:
        return Path(run_dir)
    own = run_of_config(config_file)
    if own is not None:
        return own
    if name == LATEST:
        raise UsageError(f"the run name {LATEST!r} is kept for {RUNS / LATEST}, the link to the newest run; "
                         "choose another --name")
    if name:
        return RUNS / name
    if resume:
        newest = latest_run()
        if newest is None:
            raise UsageError(f"--resume without --run-dir continues {RUNS / LATEST}, which names no run; "
                             "give --run-dir RUN")
        return newest
    return new_run_dir(model)


def latest_run(parent: Path = RUNS) -> Path | None:
    """The run folder parent/latest links to (as parent/NAME), or None when it names no pointset run."""
    link = parent / LATEST
    if not link.is_symlink():
        return None
    target = parent / os.readlink(link)
    return target if is_run_folder(RunPaths(target)) else None


def _ours(link: Path) -> bool:
    """Whether parent/latest may be replaced: absent, a link to a pointset run, or a dangling link of
    the form pointset writes (a bare folder name: the run it named was deleted). Never a folder, a
    file, or another link of the user's."""
    if not link.is_symlink():
        return not link.exists()
    target = os.readlink(link)
    return latest_run(link.parent) is not None or (not link.exists() and os.sep not in target)


def point_latest(root: Path, warn: Callable[[str], None]) -> None:
    """Make runs/latest a relative symlink to the run `root` when `root` is a pointset run folder in
    runs/, atomically (a new link renamed over the old one, so a reader never finds none).

    A runs/latest that is not pointset's link is left as it is, with one warning; where the
    filesystem has no symlinks nothing is done, silently.
    """
    root = Path(root)
    if root.name == LATEST or not root.parent.is_dir() or root.parent.resolve() != RUNS.resolve() \
            or not is_run_folder(RunPaths(root)):
        return
    link = root.parent / LATEST
    if not _ours(link):
        warn(f"warning: {link}: not pointset's link to the newest run; left as it is")
        return
    tmp = root.parent / f".{LATEST}.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(root.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError):  # no symlinks here (some network and Windows filesystems)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def has_records(paths: RunPaths) -> bool:
    """Whether the folder holds anything besides a lock."""
    return paths.root.is_dir() and any(p.name != ".lock" for p in paths.root.iterdir())


def check_new_or_resume(paths: RunPaths, resume: bool, overwrite: bool, dataset: str | Path = "") -> bool:
    """Whether the run continues an existing folder; refuse an existing one without either flag, and
    an --overwrite of anything but a pointset run folder (or of one holding the dataset or other files)."""
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if paths.root.exists() and not paths.root.is_dir():
        raise UsageError("the run folder is a file", paths.root)
    if not has_records(paths):
        return False
    if not is_run_folder(paths):
        raise UsageError("exists and is not a pointset run folder; choose another --run-dir", paths.root)
    if overwrite:
        foreign = sorted(p.name for p in paths.root.iterdir()
                         if p.name not in OWN_ENTRIES and not p.name.startswith(EVENTS_PREFIX))
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise UsageError(f"--overwrite would delete {foreign[0]!r}{more}, which pointset did not write; "
                             "move it out or choose another --run-dir", paths.root)
        if dataset and Path(dataset).resolve().is_relative_to(paths.root.resolve()):
            raise UsageError("--overwrite would delete the dataset it trains on, which lies in the run folder",
                             paths.root)
    elif not resume:
        raise UsageError("run folder exists (use --resume to continue it or --overwrite to replace it)", paths.root)
    return resume


def set_aside(paths: RunPaths) -> Path:
    """Move the run's records (all but our lock) into RUN/.replaced, so a new run can start beside them.

    Records an earlier replacement left there (it was killed before the new run started) go first.
    """
    discard_replaced(paths)
    paths.replaced.mkdir()
    for child in paths.root.iterdir():
        if child.name not in (".lock", ".replaced"):
            child.rename(paths.replaced / child.name)
    return paths.replaced


def restore(paths: RunPaths) -> None:
    """Undo `set_aside` after a new run failed to start: drop what it wrote, move the old records back."""
    for child in paths.root.iterdir():
        if child.name not in (".lock", ".replaced"):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for child in paths.replaced.iterdir():
        child.rename(paths.root / child.name)
    paths.replaced.rmdir()


def discard_replaced(paths: RunPaths) -> None:
    """Delete the replaced run's records once the new run has started (and any a crash left behind)."""
    if paths.replaced.is_dir():
        shutil.rmtree(paths.replaced)


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path, force=True) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"unreadable: {err}", path) from None


def environment() -> dict[str, Any]:
    """Versions, devices and the git commit, for env.json."""
    import importlib.metadata as md

    import jax

    versions = {}
    for dist in ("pointset", "jax", "jaxlib", "dm-haiku", "optax", "orbax-checkpoint", "numpy", "h5py"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "devices": [str(d) for d in jax.devices()],
        "git_commit": _git_commit(),
        "command": sys.argv,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class MetricsLog:
    """metrics.jsonl: append one JSON object per line, flushed at once (a kill loses nothing)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, row: dict[str, Any]) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()
        except OSError as err:
            raise PointsetError(f"cannot write: {err.strerror or err}", self.path) from None

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step` (a resumed run rewrites them) and any cut last line."""
        rows = [r for r in self.read() if r.get("step", 0) <= step]
        with atomic_path(self.path, force=True) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
