"""What every command shares: the stderr console, output formats, progress bars, error handling.

Commands print results to stdout and everything else (progress, hints, errors) to stderr, so
`pointset ... --format json | jq` always works.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pointset_cli.errors import PointsetError

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"


FormatOption = typer.Option(OutputFormat.table, "--format", help="table for people, json for scripts.")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bar or hints on stderr.")
ForceOption = typer.Option(False, "--force", help="Overwrite an existing output.")


def debug_enabled() -> bool:
    return os.environ.get("POINTSET_DEBUG", "") not in ("", "0")


def handle_errors(fn: F) -> F:
    """Turn library errors into one line on stderr and the right exit code (no traceback).

    `--debug` (or POINTSET_DEBUG=1) re-raises so the traceback shows.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except PointsetError as err:
            if debug_enabled():
                raise
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            typer.echo("error: out of memory", err=True)
            raise typer.Exit(1) from None
        except Exception as err:  # a bug: still one line, the traceback is behind --debug
            if debug_enabled():
                raise
            msg = str(err).splitlines()[0] if str(err) else ""
            typer.echo(
                f"error: internal error {type(err).__name__}: {msg} (run with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def make_progress(quiet: bool = False, transient: bool = True) -> Progress:
    """A rich progress bar on stderr; disabled when stderr is not a terminal or with --quiet."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console,
        transient=transient,
        disable=quiet or not err_console.is_terminal,
    )


def hint(message: str, quiet: bool = False) -> None:
    """A message for the person at the terminal (stderr), silenced by --quiet."""
    if not quiet:
        err_console.print(message, highlight=False)


def load_run(run: Any):
    """A TrainedRun with checkpoint and config warnings on stderr (sample, export and eval)."""
    from pointset_cli.run.load import load_run as load

    return load(run, lambda text: err_console.print(text, highlight=False, markup=False))
