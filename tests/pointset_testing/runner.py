"""`pointset` in a child process (so it can be killed, limited and signalled), and checkpoint readers."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from pointset_testing.tinydata import TINY_MODEL

SETS = [a for s in TINY_MODEL for a in ("--set", s)]


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return {**base, "JAX_PLATFORMS": "cpu", "POINTSET_DEBUG": "0", **extra}


TESTS = Path(__file__).resolve().parents[1]


def start(args: Sequence[object], cwd: Path, extra_env: dict[str, str] | None = None,
          preexec: Callable[[], None] | None = None, step_seconds: float | None = None) -> subprocess.Popen:
    """`pointset ARGS` as a child process; `step_seconds` pauses before each training batch (pointset_testing.paced)."""
    extra = dict(extra_env or {})
    command = ["-m", "pointset_cli"]
    if step_seconds is not None:
        command = ["-m", "pointset_testing.paced"]
        extra["POINTSET_TEST_STEP_SECONDS"] = str(step_seconds)
        extra["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, *command, *map(str, args)], cwd=cwd,
                            env=env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec)


_HOLD_LOCK = """
import sys
from pathlib import Path
from pointset_cli.run import folder
with folder.run_lock(folder.RunPaths(Path(sys.argv[1]))):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def lock_holder(run_dir: Path) -> Iterator[subprocess.Popen]:
    """A live process holding RUN/.lock for the block (killed with -9 after it, leaving its lock file)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(run_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def run(args: Sequence[object], cwd: Path, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    proc = start(args, cwd, **kw)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def file_size_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: writes past `limit` bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    """Poll `cond` every 2 ms until it holds; fail if `proc` ends first."""
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


_XLA_LOG = re.compile(r"^[IWEF]\d{4} |^\[Gloo\]")


def our_lines(stderr: str) -> list[str]:
    """stderr lines apart from blank ones and the C++ runtime's own log lines (XLA, gloo)."""
    return [line for line in stderr.splitlines() if line.strip() and not _XLA_LOG.match(line)]


def checkpoint_steps(run_dir: Path, sub: str = "latest") -> list[int]:
    d = run_dir / "checkpoints" / sub
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def latest_state(run_dir: Path) -> dict[str, np.ndarray]:
    """The newest latest/ checkpoint of a run as flat {path: array} (params, optimiser state, rng, step)."""
    import jax
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager((run_dir / "checkpoints" / "latest").absolute(),
                               options=ocp.CheckpointManagerOptions(read_only=True)) as mgr:
        tree = mgr.restore(mgr.latest_step(), args=ocp.args.StandardRestore())
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)
