"""The run folder: refusal without --resume/--overwrite, the lock, metrics.jsonl after a kill."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pointset_cli.errors import PointsetError, UsageError
from pointset_cli.run import folder
from pointset_testing.runner import lock_holder


def test_run_folder_refuses_existing_without_flags(tmp_path):
    paths = folder.RunPaths(tmp_path / "r")
    assert folder.check_new_or_resume(paths, False, False) is False
    paths.root.mkdir()
    (paths.root / "config.yaml").write_text("{}")
    with pytest.raises(UsageError, match="not a pointset run folder; choose another --run-dir"):
        folder.check_new_or_resume(paths, False, True)  # a config.yaml alone does not make a run
    paths.marker.write_text("")
    with pytest.raises(UsageError, match="--resume"):
        folder.check_new_or_resume(paths, False, False)
    assert folder.check_new_or_resume(paths, True, False) is True
    with pytest.raises(UsageError):
        folder.check_new_or_resume(paths, True, True)


def test_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    paths = folder.RunPaths(tmp_path / "r")
    with lock_holder(paths.root) as other, pytest.raises(PointsetError, match=f"pid {other.pid}"), \
            folder.run_lock(paths):
        pass
    assert paths.lock.read_text().strip() == str(other.pid)  # its kill -9 left the file, naming it
    warnings = []
    with folder.run_lock(paths, warnings.append):  # its owner is gone: a stale lock
        assert paths.lock.read_text().strip() == str(os.getpid())
    assert len(warnings) == 1 and f"stale lock of pid {other.pid}" in warnings[0]
    assert not paths.lock.exists()


_RACER = """
import sys, time
from pathlib import Path
from pointset_cli.errors import PointsetError
from pointset_cli.run import folder
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
try:
    with folder.run_lock(folder.RunPaths(Path(sys.argv[1]))):
        print("held", flush=True)
        sys.stdin.read()  # until the test has heard from every racer
except PointsetError:
    print("refused", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stale", [False, True])
def test_trainers_started_together_never_both_hold_the_lock(tmp_path, stale):
    """Four processes released at the same instant, ten times, on a fresh folder or over a stale lock."""
    for trial in range(10):
        root = tmp_path / f"r{trial}"
        if stale:
            root.mkdir()
            (root / ".lock").write_text("999999999\n")  # no such process
        at = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(root), str(at)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for _ in range(4)]
        outcomes = sorted(p.stdout.readline().strip() for p in procs)
        for p in procs:
            p.communicate(timeout=60)
        assert outcomes == ["held", "refused", "refused", "refused"], (trial, outcomes)


def test_metrics_log_truncates_after_resume_step(tmp_path):
    log = folder.MetricsLog(tmp_path / "m.jsonl")
    for step in (1, 2, 3):
        log.append({"step": step, "loss": float(step)})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "lo')  # a line cut by a kill
    log.truncate_after(2)
    assert [r["step"] for r in log.read()] == [1, 2]
