"""What every command shares: the stderr console, output formats, progress bars, error handling.

Commands print results to stdout and everything else (progress, hints, errors) to stderr, so
`pointset ... --format json | jq` always works.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

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
JsonOption = typer.Option(False, "--json", help="Print a JSON summary (files written, sizes, checkpoint step) instead of the file list.")


def check_json_output(as_json: bool, out: Any) -> None:
    """--json and --out - would both write stdout: refused before any work."""
    if as_json and str(out) == "-":
        from pointset_cli.errors import UsageError

        raise UsageError("--json and --out - both write to stdout; choose one")


def report_written(paths: list[Any], as_json: bool, summary: dict[str, Any]) -> None:
    """The files a command wrote on stdout: one path a line, or with --json one document."""
    if as_json:
        print_json({**summary, "files": [str(p) for p in paths]})
        return
    for path in paths:
        if str(path) != "-":  # stdout holds the sets themselves
            typer.echo(str(path))


def debug_enabled() -> bool:
    return os.environ.get("POINTSET_DEBUG", "") not in ("", "0")


_ctrl_c = threading.Event()


def _on_ctrl_c(signum: int, frame: Any) -> None:
    _ctrl_c.set()
    signal.default_int_handler(signum, frame)


class _QuietAfterCtrlC(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _ctrl_c.is_set()


@contextlib.contextmanager
def _noting_ctrl_c() -> Iterator[None]:
    """Remember a Ctrl-C: raised inside a JAX host callback it comes back as XLA's runtime error."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:  # e.g. ignored in a batch job
        yield
        return
    _ctrl_c.clear()
    signal.signal(signal.SIGINT, _on_ctrl_c)
    callback_log = logging.getLogger("jax._src.callback")  # it logs the interrupted callback's traceback
    quiet = _QuietAfterCtrlC()
    callback_log.addFilter(quiet)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        callback_log.removeFilter(quiet)


def _exit_interrupted() -> NoReturn:
    """Exit 130 after a Ctrl-C. After a real one (seen by our handler), leave at once: everything
    of ours has unwound (temporaries removed), but XLA or numba threads may still be running, and
    the interpreter's normal shutdown under them aborts ("terminate called without an active
    exception")."""
    typer.echo("interrupted", err=True)
    if _ctrl_c.is_set():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise typer.Exit(130)


def handle_errors(fn: F) -> F:
    """Turn library errors into one line on stderr and the right exit code (no traceback).

    `--debug` (or POINTSET_DEBUG=1) re-raises so the traceback shows.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _noting_ctrl_c():
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except PointsetError as err:
            if debug_enabled():
                raise
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            _exit_interrupted()
        except MemoryError:
            typer.echo("error: out of memory", err=True)
            raise typer.Exit(1) from None
        except Exception as err:  # a bug: still one line, the traceback is behind --debug
            if _ctrl_c.is_set() and not debug_enabled():  # the interruption, as a callback re-raised it
                _exit_interrupted()
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


def make_progress(quiet: bool = False, transient: bool = True) -> Progress | LineProgress:
    """A rich progress bar on stderr; plain lines when stderr is not a terminal; nothing with --quiet."""
    if not quiet and not err_console.is_terminal:
        return LineProgress()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console,
        transient=transient,
        disable=quiet,
    )


QUIET_SECONDS = 2.0


class LineProgress:
    """Progress for a log file or a batch job: one plain stderr line per new status (a training log
    step) and per tenth of a task done after its first QUIET_SECONDS, with the elapsed time and an
    estimate of the time left.

    The subset of rich's Progress that the commands use: add_task, update, start, stop, as a context.
    """

    def __init__(self) -> None:
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def add_task(self, description: str, total: float | None = None, completed: float = 0, status: str = "") -> int:
        task = len(self.tasks)
        self.tasks[task] = {"description": description, "total": total, "completed": completed, "status": status,
                            "t0": time.monotonic(), "done0": completed, "tenth": self._tenth(completed, total)}
        return task

    def update(self, task: int, *, completed: float | None = None, total: float | None = None,
               status: str | None = None, description: str | None = None) -> None:
        t = self.tasks[task]
        new_status = status is not None and status != t["status"]
        for key, value in (("completed", completed), ("total", total), ("status", status),
                           ("description", description)):
            if value is not None:
                t[key] = value
        tenth = self._tenth(t["completed"], t["total"])
        # A task done within seconds (most commands on small inputs) says nothing but its result.
        if new_status or (tenth > t["tenth"] and time.monotonic() - t["t0"] >= QUIET_SECONDS):
            t["tenth"] = tenth
            self._line(t)

    @staticmethod
    def _tenth(completed: float, total: float | None) -> int:
        return int(10 * completed / total) if total else 0

    @staticmethod
    def _line(t: dict[str, Any]) -> None:
        elapsed = time.monotonic() - t["t0"]
        parts = [f"{t['description']} {t['completed']:,.0f}" + (f"/{t['total']:,.0f}" if t["total"] else "")]
        if t["status"]:
            parts.append(t["status"])
        parts.append(f"{_clock(elapsed)} elapsed")
        rate = (t["completed"] - t["done0"]) / elapsed if elapsed > 0 else 0.0
        if t["total"] and rate > 0 and t["completed"] < t["total"]:
            parts.append(f"{_clock((t['total'] - t['completed']) / rate)} left")
        err_console.print("  ".join(parts), highlight=False, markup=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def hint(message: str, quiet: bool = False) -> None:
    """A message for the person at the terminal (stderr), silenced by --quiet."""
    if not quiet:
        err_console.print(message, highlight=False)


CheckpointOption = typer.Option(
    None, "--checkpoint", metavar="best|latest|STEP",
    help="Which checkpoint: best (lowest validation loss), latest, or a step number "
         "(default: best when the run has one, else latest; the latent prior was fitted on that default).")


def load_run(run: Any, checkpoint: str | None = None):
    """A TrainedRun (of --checkpoint) with checkpoint and config warnings on stderr (sample, export and eval)."""
    from pointset_cli.run.load import load_run as load

    return load(run, lambda text: err_console.print(text, highlight=False, markup=False), checkpoint)
