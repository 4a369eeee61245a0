"""The run folder: refusal without --resume/--overwrite, the lock, metrics.jsonl after a kill."""

from __future__ import annotations

import os
import shutil
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


def _run(path):
    """A pointset run folder (its marker) at `path`."""
    paths = folder.RunPaths(path)
    paths.root.mkdir(parents=True)
    paths.marker.write_text("")
    return paths.root


def test_new_runs_are_numbered_one_past_the_highest_of_their_model(tmp_path):
    assert folder.new_run_dir("mlp", tmp_path / "none") == tmp_path / "none" / "mlp-1"
    for name in ("mlp-1", "mlp-3", "mlp-x", "mlpx-9", "mlp", "tspn-7"):
        (tmp_path / name).mkdir()
    assert folder.new_run_dir("mlp", tmp_path) == tmp_path / "mlp-4"  # not the free 2: 4 is newer than 3
    assert folder.new_run_dir("dspn", tmp_path) == tmp_path / "dspn-1"


def test_the_run_folder_without_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert folder.choose_run_dir(tmp_path / "x", None, "named", "mlp", False) == tmp_path / "x"
    assert folder.choose_run_dir(None, None, "named", "mlp", True) == folder.RUNS / "named"
    assert folder.choose_run_dir(None, None, "", "mlp", False) == folder.RUNS / "mlp-1"
    with pytest.raises(UsageError, match="'latest' is kept for runs/latest"):
        folder.choose_run_dir(None, None, "latest", "mlp", False)
    with pytest.raises(UsageError, match="--resume without --run-dir continues runs/latest, which names no run"):
        folder.choose_run_dir(None, None, "", "mlp", True)
    own = _run(tmp_path / "elsewhere")
    (own / "config.yaml").write_text("{}")
    assert folder.choose_run_dir(None, own / "config.yaml", "named", "mlp", True) == own
    folder.point_latest(_run(folder.RUNS / "mlp-1"), print)
    assert folder.choose_run_dir(None, None, "", "mlp", True) == folder.RUNS / "mlp-1"  # resumes the newest
    assert folder.choose_run_dir(None, None, "", "mlp", False) == folder.RUNS / "mlp-2"


def test_runs_latest_links_the_newest_run_started_in_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    link = folder.RUNS / "latest"
    warnings = []
    folder.point_latest(_run(folder.RUNS / "a"), warnings.append)
    folder.point_latest(_run(folder.RUNS / "b"), warnings.append)
    assert link.is_symlink() and os.readlink(link) == "b" and folder.latest_run() == folder.RUNS / "b"
    folder.point_latest(_run(tmp_path / "outside"), warnings.append)  # not in runs/
    (folder.RUNS / "plain").mkdir()
    folder.point_latest(folder.RUNS / "plain", warnings.append)  # not a pointset run
    assert os.readlink(link) == "b" and not warnings
    shutil.rmtree(folder.RUNS / "b")  # the link now dangles: it was ours, so the next run replaces it
    folder.point_latest(folder.RUNS / "a", warnings.append)
    assert os.readlink(link) == "a" and not warnings
    assert sorted(p.name for p in folder.RUNS.iterdir()) == ["a", "latest", "plain"]  # no temporary left


@pytest.mark.parametrize("users", ["folder", "file", "link to a folder of theirs"])
def test_a_runs_latest_of_the_users_is_left_as_it_is(tmp_path, monkeypatch, users):
    monkeypatch.chdir(tmp_path)
    run = _run(folder.RUNS / "a")
    (folder.RUNS / "theirs").mkdir()
    link = folder.RUNS / "latest"
    if users == "folder":
        link.mkdir()
    elif users == "file":
        link.write_text("mine")
    else:
        link.symlink_to("theirs")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    warnings = []
    folder.point_latest(run, warnings.append)
    assert warnings == ["warning: runs/latest: not pointset's link to the newest run; left as it is"]
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert link.is_symlink() == (users == "link to a folder of theirs")


def test_runs_latest_is_skipped_silently_where_there_are_no_symlinks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _run(folder.RUNS / "a")

    def no_symlinks(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    warnings = []
    folder.point_latest(run, warnings.append)
    assert not warnings and sorted(p.name for p in folder.RUNS.iterdir()) == ["a"]
