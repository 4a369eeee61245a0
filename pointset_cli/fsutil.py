"""Atomic file output: write to a temporary sibling, then rename into place.

A reader never sees a half-written file, and an interrupted write leaves the previous
file (or nothing) behind. Temporaries are named `.NAME.PID-XXXX.tmp`; one whose writer is no
longer running (a kill -9) is removed the next time NAME is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pointset_cli.errors import OutputExistsError, PointsetError, UsageError


def check_writable(path: Path, force: bool) -> None:
    """Refuse to replace an existing `path` unless `force`; fail early if its folder is missing."""
    if path.exists() and not force:
        raise OutputExistsError(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PointsetError("output folder does not exist", parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries of `path` (our naming pattern) whose writing process is gone; returns them."""
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)-\w+\.tmp")
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or _alive(int(match.group(1))) or entry.is_symlink():
            continue
        if entry.is_dir():  # a folder written by atomic_folder
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    check_writable(path, force)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs should get the usual mode
    try:
        yield tmp_path
        if path.exists() and not force:  # appeared while we were writing
            raise OutputExistsError(path)
        os.replace(tmp_path, path)
    except OSError as err:
        raise PointsetError(f"cannot write: {err.strerror or err}", path) from err
    finally:
        tmp_path.unlink(missing_ok=True)


def check_replaceable_folder(path: Path, force: bool, ours: Callable[[Path], bool]) -> None:
    """Refuse an existing folder `path` unless `force`, and even then unless `ours(path)` says that
    pointset wrote all of it (so --force never deletes anything else)."""
    if not path.exists():
        return
    if not force:
        raise OutputExistsError(path)
    if not path.is_dir() or not ours(path):
        raise UsageError("exists and holds more than an earlier output of this command; choose another --out",
                            path)


@contextlib.contextmanager
def atomic_folder(path: Path, force: bool, ours: Callable[[Path], bool]) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; when the block succeeds it becomes `path`, the old
    folder (see check_replaceable_folder) moving out of the way first. A reader sees the old folder
    or the new one, never a mix; a kill leaves hidden temporaries that the next write removes."""
    path = Path(path)
    check_replaceable_folder(path, force, ours)
    remove_stale_temporaries(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=parent))
    except OSError as err:
        raise PointsetError(f"cannot write: {err.strerror or err}", path) from err
    try:
        yield tmp
        check_replaceable_folder(path, force, ours)  # it may have appeared while we were writing
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=parent))
            os.replace(path, old)  # an empty folder is replaced by a folder
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        raise PointsetError(f"cannot write: {err.strerror or err}", path) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_folder(path: Path) -> None:
    """Create folder `path` (and its parents) unless it exists; one clear error otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PointsetError(f"cannot create folder: {err.strerror or err}", path) from None
