"""Errors the command line turns into one-line messages and exit codes.

Library code raises these (never prints); `cli._common.handle_errors` catches them.
Exit codes (ARCHITECTURE.md): 1 runtime failure or bad input data, 2 usage or config error.
"""

from __future__ import annotations

from pathlib import Path


def shown(name: str | Path) -> str:
    """A file name fit for one line of output: as it is when printable, else escaped as Python
    writes it (quoted, with \\n for a line break and \\udcff for a byte that is not UTF-8)."""
    text = str(name)
    return text if text.isprintable() else repr(text)


class PointsetError(Exception):
    """A failure the user can act on; `path` names the file it concerns."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{shown(self.path)}: {self.message}" if self.path else self.message


class InputError(PointsetError):
    """An input file is unreadable, truncated, malformed or holds non-finite values."""


class UsageError(PointsetError):
    """Bad options, configuration or names (exit 2)."""

    exit_code = 2


class OutputExistsError(UsageError):
    """An output exists and `--force` (or `--overwrite`) was not given."""

    def __init__(self, path: str | Path) -> None:
        super().__init__("already exists (use --force to overwrite)", path)
