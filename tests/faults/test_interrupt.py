"""Ctrl-C in the middle of `eval` (numba workers on every core, JAX host callbacks): a clean stop,
the one line "interrupted", exit 130.

The signal is sent when the first progress line of the pass appears on stderr (plain lines, as
in any log), so the test follows the run's own progress, not the clock.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from pointset_testing.runner import our_lines, start

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist_mlp"
BUNDLED_MNIST = SHIPPED.parents[1] / "data" / "mnist_t10k"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a child of a batch job may inherit SIGINT ignored


def _interrupt_at_first_progress_line(args: list, cwd: Path) -> None:
    proc = start(args, cwd, preexec=_default_sigint)
    seen = []
    # A distance pass's line ("CD pairs 9,000/90,000  0:00:03 elapsed ..."), after the plan line and
    # the lines of earlier phases (decoding sets).
    while not (seen and " pairs" in seen[-1] and " elapsed" in seen[-1]):
        seen.append(proc.stderr.readline())
        assert seen[-1] and len(seen) <= 30, "".join(seen) + proc.communicate(timeout=60)[1]
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=120)  # the pass would take minutes more
    assert proc.returncode == 130, rest  # was -6 ("terminate called without an active exception") for eval RUN
    assert our_lines(rest)[-1:] == ["interrupted"], rest
    assert "Traceback" not in rest and "error" not in rest and out == "", rest


@pytest.mark.slow
@pytest.mark.parametrize("metrics", ["mmd_emd", "mmd_cd,mmd_emd"])
def test_ctrl_c_during_eval_of_sample_files_stops_cleanly(tmp_path, metrics):
    rng = np.random.default_rng(0)
    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, rng.normal(size=(100, 1024, 3)).astype(np.float32))
    _interrupt_at_first_progress_line(["eval", "--samples", "a.npy", "--refs", "b.npy", "--metrics", metrics],
                                      tmp_path)


@pytest.mark.slow
def test_ctrl_c_during_eval_of_a_run_stops_cleanly(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "run")  # eval writes eval.json into the run
    proc = start(["prepare", BUNDLED_MNIST, "-o", "mnist.h5", "--test-fraction", "0.5", "-q"], tmp_path)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    _interrupt_at_first_progress_line(["eval", "run", "mnist.h5", "--max-sets", "300"], tmp_path)
    assert not (tmp_path / "run" / "eval.json").exists()
