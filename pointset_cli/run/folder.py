"""The run folder: layout, lock, env.json, data.json and metrics.jsonl.

```
RUN/config.yaml     resolved config (data.path relative to RUN)
RUN/env.json        versions, devices, git commit, command line
RUN/data.json       what sampling needs of the data: dim, n_max, classes, normalisation
RUN/metrics.jsonl   one JSON object per log step / evaluation
RUN/checkpoints/    Orbax: latest/ and best/
RUN/prior.npz       latent prior (autoencoders)
RUN/loss.png        loss curves, refreshed at each evaluation
RUN/eval.json       the last `pointset eval RUN`
RUN/.lock           pid of the trainer that owns the folder
```
No JAX here.
"""

from __future__ import annotations

import contextlib
import dataclasses
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


def open_run(path: str | Path) -> RunPaths:
    """An existing, trained run folder (has config.yaml and data.json), else an input error."""
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise InputError("no such run folder", paths.root)
    for needed in (paths.config, paths.data_info):
        if not needed.is_file():
            raise InputError(f"not a run folder (no {needed.name})", paths.root)
    return paths


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(paths: RunPaths, warn: Callable[[str], None] = lambda text: None) -> Iterator[None]:
    """Hold RUN/.lock (our pid) for the block; a lock held by a live process refuses the run.

    A lock left by a dead process (a kill -9) is taken over with a warning naming its pid.
    """
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PointsetError(f"cannot create the run folder: {err.strerror or err}", paths.root) from None
    for _ in range(2):
        try:
            fd = os.open(paths.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(paths.lock.read_text().strip() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _pid_alive(owner):
                raise PointsetError(f"another trainer (pid {owner}) is using this run folder", paths.root) from None
            warn(f"warning: {paths.lock}: stale lock of pid {owner} (no longer running) taken over")
            paths.lock.unlink(missing_ok=True)
            continue
        except OSError as err:
            raise PointsetError(f"cannot write: {err.strerror or err}", paths.root) from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise PointsetError("cannot take the run folder's lock", paths.lock)
    try:
        yield
    finally:
        paths.lock.unlink(missing_ok=True)


def check_new_or_resume(paths: RunPaths, resume: bool, overwrite: bool) -> bool:
    """Whether the run continues an existing folder; refuse an existing one without either flag."""
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    exists = paths.root.exists() and any(p.name != ".lock" for p in paths.root.iterdir())
    if exists and not (resume or overwrite):
        raise UsageError("run folder exists (use --resume to continue it or --overwrite to replace it)", paths.root)
    return exists and resume


def clear(paths: RunPaths) -> None:
    """Empty the run folder for --overwrite, keeping our own lock file."""
    for child in paths.root.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


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
