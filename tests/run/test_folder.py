"""The run folder: refusal without --resume/--overwrite, the lock, metrics.jsonl after a kill."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pointset_cli.errors import PointsetError, UsageError
from pointset_cli.run import folder


def test_run_folder_refuses_existing_without_flags(tmp_path):
    paths = folder.RunPaths(tmp_path / "r")
    assert folder.check_new_or_resume(paths, False, False) is False
    paths.root.mkdir()
    (paths.root / "config.yaml").write_text("{}")
    with pytest.raises(UsageError, match="--resume"):
        folder.check_new_or_resume(paths, False, False)
    assert folder.check_new_or_resume(paths, True, False) is True
    with pytest.raises(UsageError):
        folder.check_new_or_resume(paths, True, True)


def test_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    paths = folder.RunPaths(tmp_path / "r")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        paths.root.mkdir()
        paths.lock.write_text(f"{other.pid}\n")
        with pytest.raises(PointsetError, match=f"pid {other.pid}"), folder.run_lock(paths):
            pass
    finally:
        other.kill()
        other.wait()
    with folder.run_lock(paths):  # its owner is gone: a stale lock
        assert paths.lock.read_text().strip() == str(os.getpid())
    assert not paths.lock.exists()


def test_metrics_log_truncates_after_resume_step(tmp_path):
    log = folder.MetricsLog(tmp_path / "m.jsonl")
    for step in (1, 2, 3):
        log.append({"step": step, "loss": float(step)})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "lo')  # a line cut by a kill
    log.truncate_after(2)
    assert [r["step"] for r in log.read()] == [1, 2]
