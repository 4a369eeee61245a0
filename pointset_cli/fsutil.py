"""Atomic file output: write to a temporary sibling, then rename into place.

A reader never sees a half-written file, and an interrupted write leaves the previous
file (or nothing) behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pointset_cli.errors import OutputExistsError, PointsetError


def check_writable(path: Path, force: bool) -> None:
    """Refuse to replace an existing `path` unless `force`; fail early if its folder is missing."""
    if path.exists() and not force:
        raise OutputExistsError(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PointsetError("output folder does not exist", parent)


@contextlib.contextmanager
def atomic_path(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
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


def make_folder(path: Path) -> None:
    """Create folder `path` (and its parents) unless it exists; one clear error otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PointsetError(f"cannot create folder: {err.strerror or err}", path) from None
