"""Orbax checkpoints of the training state: `latest/` (every few steps) and `best/` (by validation loss,
parameters and step only).

Each save is finished before training goes on, so a failed write (a full disk) is one error naming
the step that failed, and the half-written folder is removed; the checkpoints before it stay as
they were. A checkpoint that a kill left half-written is skipped with a warning naming it, and the
newest readable one is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pointset_cli.errors import InputError, PointsetError, UsageError

_TMP_MARK = ".orbax-checkpoint-tmp"
# After a failed save, close() removes half-written folders until none has appeared for QUIET_S
# seconds, waiting QUIET_LIMIT_S at most.
QUIET_S = 0.5
QUIET_LIMIT_S = 5.0


def _quiet_absl() -> None:
    """Orbax logs through absl: its info lines, and on a failed save the same error once per writer
    thread with tracebacks. Every failure also reaches us as an exception, which we report in one
    line (`_saving`, `_restore_newest`), so absl shows only fatal messages."""
    import absl.logging

    absl.logging.set_verbosity(absl.logging.FATAL)


def _manager(directory: Path, max_to_keep: int, best: bool, read_only: bool = False) -> Any:
    import jax
    import orbax.checkpoint as ocp

    _quiet_absl()
    # In a multi-process run only process 0 saves (host copies of the replicated state): Orbax
    # must then neither wait for the other processes nor expect them at its barriers.
    multi = jax.process_count() > 1
    if multi and not read_only:
        directory.mkdir(parents=True, exist_ok=True)  # Orbax cannot create it with active_processes set
    options = ocp.CheckpointManagerOptions(
        create=not multi,
        read_only=read_only,
        max_to_keep=max_to_keep,
        enable_async_checkpointing=not multi,
        best_fn=(lambda m: m["val_loss"]) if best else None,
        best_mode="min",
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0})
        if multi else ocp.options.MultiprocessingOptions(),
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


def _drop_half_written(directory: Path, warn: Callable[[str], None]) -> bool:
    """Remove the half-written save folders in `directory`; whether there was one."""
    if not directory.is_dir():
        return False
    found = False
    for child in sorted(directory.iterdir()):
        if _TMP_MARK in child.name:
            warn(f"warning: {child}: half-written checkpoint (interrupted save) ignored and removed")
            shutil.rmtree(child, ignore_errors=True)
            found = True
    return found


def _corrupt_metrics(directory: Path) -> list[Path]:
    """Step folders whose metrics file (best/: the validation loss) is not readable JSON: Orbax reads
    every one of them when it opens the folder, and one bad byte would make the whole run unusable."""
    bad = []
    for metrics in sorted(directory.glob("*/metrics/metrics")) if directory.is_dir() else []:
        try:
            json.loads(metrics.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            bad.append(metrics.parent.parent)
    return bad


class Checkpoints:
    """latest/ (keeps `max_to_keep`) and best/ (keeps the lowest val_loss) under `root`."""

    def __init__(self, root: Path, max_to_keep: int, warn: Callable[[str], None]):
        self.root = Path(root)
        self.warn = warn
        for sub in ("latest", "best"):
            _drop_half_written(self.root / sub, warn)
            for step in _corrupt_metrics(self.root / sub):
                warn(f"warning: {step}: checkpoint with an unreadable metrics file ignored and removed")
                shutil.rmtree(step, ignore_errors=True)
        self.latest = _manager(self.root / "latest", max_to_keep, best=False)
        self.best = _manager(self.root / "best", 1, best=True)
        self.failed = False  # a save failed: close() then waits for its folder to stay gone

    def save_latest(self, step: int, state: Any) -> None:
        import orbax.checkpoint as ocp

        if step not in self.latest.all_steps():
            with self._reporting(self.root / "latest" / str(step), self.latest):
                self.latest.save(step, args=ocp.args.StandardSave(state))
                self.latest.wait_until_finished()

    def save_best(self, step: int, state: Any, val_loss: float) -> None:
        """Keep `state`'s parameters and step if `val_loss` beats the best so far (Orbax keeps the
        single best). Only what sample / eval / export read: a resume restores latest/, so the
        optimiser state (twice the parameters' size with Adam) is not stored twice."""
        import orbax.checkpoint as ocp

        if step not in self.best.all_steps():
            kept = {"params": state.params, "step": state.step}
            with self._reporting(self.root / "best" / str(step), self.best):
                self.best.save(step, args=ocp.args.StandardSave(kept), metrics={"val_loss": float(val_loss)})
                self.best.wait_until_finished()

    def restore_latest(self, template: Any) -> Any | None:
        """The newest readable latest checkpoint restored into `template`'s structure, or None."""
        return _restore_newest(self.latest, self.root / "latest", template, self.warn)

    def wait(self) -> None:
        with self._reporting(self.root, self.latest, self.best):
            self.latest.wait_until_finished()
            self.best.wait_until_finished()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            for manager in (self.latest, self.best):
                with contextlib.suppress(Exception):  # a failed save is reported by wait() or already was
                    manager.close()
            # Once the managers' writer threads are gone, nothing can write into a failed save's folder
            # again: one the error path removed while a writer was still busy is removed for good here.
            # After a failure, CI still saw Orbax recreate the folder after the managers closed: keep
            # removing it until none has appeared for QUIET_S.
            deadline = time.monotonic() + (QUIET_LIMIT_S if self.failed else 0.0)
            quiet_since = time.monotonic()
            while True:
                for sub in ("latest", "best"):
                    if _drop_half_written(self.root / sub, lambda _: None):
                        quiet_since = time.monotonic()
                if time.monotonic() >= deadline or time.monotonic() - quiet_since >= QUIET_S:
                    break
                time.sleep(0.05)

    @contextlib.contextmanager
    def _reporting(self, path: Path, *managers: Any) -> Iterator[None]:
        """_write_errors, remembering that a save failed."""
        try:
            with _write_errors(path, *managers):
                yield
        except PointsetError:
            self.failed = True
            raise


@contextlib.contextmanager
def _write_errors(path: Path, *managers: Any) -> Iterator[None]:
    """A failed (possibly asynchronous) save -> one-line error; earlier checkpoints stay as they were.
    The managers' background writers are waited for first: one still running after the failure
    could write into the half-written folder again once it is removed."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - Orbax wraps OSError in several exception types
        msg = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        for manager in managers:
            with contextlib.suppress(Exception):  # the same failure again: already being reported
                manager.wait_until_finished()
        _drop_half_written(path.parent, lambda _: None)
        raise PointsetError(f"cannot write checkpoint: {msg}", path) from None


def _restore_newest(mgr: Any, directory: Path, template: Any | None, warn: Callable[[str], None],
                    steps: list[int] | None = None) -> Any | None:
    """The newest readable of `steps` (default: all the manager has), restored into `template`."""
    import orbax.checkpoint as ocp

    steps = sorted(mgr.all_steps() if steps is None else steps, reverse=True)
    _quiet_failed_restores()
    for i, step in enumerate(steps):
        try:
            restored = mgr.restore(step, args=ocp.args.StandardRestore(template))
            msg = mismatch(template, restored)
        except Exception as err:  # noqa: BLE001 - any failure to read means "corrupt": fall back
            restored, msg = None, str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        if restored is not None and msg is None:
            return restored
        if template is not None and ("shape" in msg.lower() or "structure" in msg.lower() or "tree" in msg.lower()):
            raise InputError(
                f"checkpoint does not match the configured model ({msg}); use --overwrite for a new run",
                directory / str(step),
            ) from None
        fallback = f"using step {steps[i + 1]}" if i + 1 < len(steps) else "no earlier checkpoint"
        warn(f"warning: {directory / str(step)}: unreadable checkpoint ({msg}); {fallback}")
    return None


def _quiet_failed_restores() -> None:
    """Silence the echoes of failed Orbax restores, which we report ourselves in one line each.

    Its reader threads leave futures nobody awaits (asyncio logs each: "Task exception was never
    retrieved") and callbacks on an event loop it has closed (each an unraisable
    RuntimeError('Event loop is closed')): dozens of tracebacks on stderr. Drop exactly those; other
    log records and unraisable exceptions pass through.
    """
    previous = sys.unraisablehook
    if getattr(previous, "quiets_failed_restore", False):
        return

    def hook(unraisable: Any) -> None:
        err = unraisable.exc_value
        if not (isinstance(err, RuntimeError) and str(err) == "Event loop is closed"):
            previous(unraisable)

    hook.quiets_failed_restore = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(lambda record: "exception was never retrieved" not in record.getMessage())


def mismatch(template: Any, restored: Any) -> str | None:
    """The first leaf whose shape differs between `template` and `restored` (None: they match)."""
    import jax

    if template is None:
        return None
    want = jax.tree_util.tree_flatten_with_path(template)
    got = jax.tree_util.tree_flatten_with_path(restored)
    if want[1] != got[1]:
        return "tree structure differs: the model's parameters are not those saved"
    for (path, a), (_, b) in zip(want[0], got[0], strict=True):
        if tuple(a.shape) != tuple(b.shape):
            return f"{jax.tree_util.keystr(path)}: shape {tuple(b.shape)} saved, {tuple(a.shape)} configured"
    return None


CHECKPOINT_CHOICES = ("best", "latest")


def steps_in(directory: Path) -> list[int]:
    """The steps of the checkpoints in latest/ or best/, ascending (none when it does not exist)."""
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []


def _choice(checkpoint: str | int | None) -> str | int | None:
    """--checkpoint's text (or a step as a number) -> "best", "latest", a step, or None (the default)."""
    if checkpoint is None or checkpoint in CHECKPOINT_CHOICES or isinstance(checkpoint, int):
        return checkpoint
    if checkpoint.isdigit():
        return int(checkpoint)
    raise UsageError(f"--checkpoint must be best, latest or a step number, not {checkpoint!r}")


def _present(steps: dict[str, list[int]]) -> str:
    listed = "; ".join(f"{sub} {', '.join(map(str, found))}" for sub, found in steps.items() if found)
    return f"checkpoints present: {listed or 'none'}"


def _folders(root: Path, choice: str | int | None) -> list[str]:
    """The checkpoint folders to read, in order: those holding the chosen step, the chosen one, or
    by default best then latest; a choice that is not there -> usage error listing what is."""
    present = {sub: steps_in(root / sub) for sub in CHECKPOINT_CHOICES}
    if choice is None:
        return [sub for sub in CHECKPOINT_CHOICES if (root / sub).is_dir()]
    if isinstance(choice, int):
        subs = [sub for sub in CHECKPOINT_CHOICES if choice in present[sub]]
        if not subs:
            raise UsageError(f"--checkpoint {choice}: no checkpoint of that step ({_present(present)})", root)
        return subs
    if not present[choice]:
        raise UsageError(f"--checkpoint {choice}: the run has no {choice} checkpoint ({_present(present)})", root)
    return [choice]


def load_params(root: Path, warn: Callable[[str], None], checkpoint: str | int | None = None) -> tuple[Any, int]:
    """Parameters and step of one of a run's checkpoints, without a template.

    `checkpoint`: "best", "latest" (its newest readable step), a step number (in either folder), or
    None for best when the run has one, else latest. One that is not there is a usage error listing
    the steps present.
    """
    choice = _choice(checkpoint)
    root = Path(root)
    subs = _folders(root, choice)
    for i, sub in enumerate(subs):
        directory = root / sub
        corrupt = _corrupt_metrics(directory)
        if corrupt:  # read-only here: the next training session removes it
            warn(f"warning: {corrupt[0]}: checkpoint with an unreadable metrics file; "
                 + (f"using the {subs[i + 1]} checkpoint" if i + 1 < len(subs) else "no other checkpoint"))
            continue
        mgr = _manager(directory, 1, best=sub == "best", read_only=True)
        try:
            restored = _restore_newest(mgr, directory, None, warn, [choice] if isinstance(choice, int) else None)
        finally:
            mgr.close()
        if restored is not None:
            return restored["params"], int(restored["step"])
    raise InputError("no readable checkpoint" + (f" of step {choice}" if isinstance(choice, int) else ""), root)
