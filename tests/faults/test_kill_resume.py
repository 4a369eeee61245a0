"""kill -9 at five moments, then SIGTERM, each followed by --resume: the run ends exactly as one that never stopped.

One run folder goes through every fault in turn (each trainer is a fresh `pointset train`
process), so the whole chain costs a few process start-ups. A second trainer started while one
holds the folder is refused; the lock a kill -9 leaves behind is taken over with a warning.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from pointset_testing.runner import SETS, assert_same_state, checkpoint_steps, latest_state, our_lines, run, start, wait_for

STEPS = 14  # checkpoints every 2 steps, evaluation every 3 (tinydata.TINY_MODEL)
# Each step of the faulty chain lasts at least this long, so every moment below lasts long enough to
# be caught by a 2 ms poll on any machine; the run it is compared with goes at full speed.
STEP_SECONDS = 0.3
TRAIN = ["train", "tiny.h5", *SETS, "--steps", STEPS, "--set", "train.log_every=1", "--set", "data.jitter=0.01",
         "--seed", "3", "-q"]


def _logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return [r["step"] for r in rows if "loss" in r]


def _lock_named(run_dir: Path) -> bool:
    """The lock is taken and names its holder (the pid is written just after the file is created)."""
    try:
        return bool((run_dir / ".lock").read_text().strip())
    except FileNotFoundError:
        return False


def _half_written(run_dir: Path) -> bool:
    latest = run_dir / "checkpoints" / "latest"
    return latest.is_dir() and any("tmp" in p.name for p in latest.iterdir())


# (what the moment is, when it has come, the signal): each lands in a different part of a trainer's life.
# `ckpt` and `log` are the newest checkpoint and logged step before the trainer started: a resumed
# trainer logs again the steps after its checkpoint, so only a logged step past `log` is its own.
FAULTS = [
    ("start-up, lock taken, nothing trained", lambda run, ckpt, log: _lock_named(run), signal.SIGKILL),
    ("during a checkpoint write", lambda run, ckpt, log: _half_written(run), signal.SIGKILL),
    ("just after a checkpoint", lambda run, ckpt, log: max(checkpoint_steps(run), default=0) > ckpt, signal.SIGKILL),
    ("between checkpoints", lambda run, ckpt, log: any(s % 2 and s > log for s in _logged_steps(run)), signal.SIGKILL),
    ("SIGTERM mid-run", lambda run, ckpt, log: any(s > log for s in _logged_steps(run)), signal.SIGTERM),
    ("after the last step (evaluation, prior)", lambda run, ckpt, log: STEPS in _logged_steps(run), signal.SIGKILL),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_mnist):
    work = tmp_path_factory.mktemp("kill")
    (work / "tiny.h5").symlink_to(tiny_mnist)
    return work


@pytest.mark.slow
def test_kills_and_sigterm_then_resume_equal_an_uninterrupted_run(workdir):
    straight = start([*TRAIN, "--run-dir", "straight"], workdir)  # runs beside the faulty chain
    run_dir = workdir / "chain"
    args = [*TRAIN, "--run-dir", "chain"]
    record = []
    for i, (moment, came, signum) in enumerate(FAULTS):
        ckpt, log = max(checkpoint_steps(run_dir), default=0), max(_logged_steps(run_dir), default=0)
        proc = start([*args, *(["--resume"] if i else [])], workdir, step_seconds=STEP_SECONDS)
        wait_for(lambda: came(run_dir, ckpt, log), proc, moment)  # noqa: B023 - called within the iteration
        if i == 2:  # while a trainer owns the folder, a second one is refused
            second = run([*args, "--resume"], workdir)
            assert second.returncode == 1
            assert f"pid {proc.pid}" in second.stderr and len(our_lines(second.stderr)) == 1, second.stderr
        proc.send_signal(signum)
        stderr = proc.communicate(timeout=600)[1]
        record.append((moment, checkpoint_steps(run_dir)))
        if signum == signal.SIGKILL:
            assert (run_dir / ".lock").read_text().strip() == str(proc.pid)  # a kill -9 leaves its lock
        else:  # the checkpoint at the signal's step is written, then exit 128 + 15
            assert proc.returncode == 143 and "interrupted by SIGTERM" in stderr, stderr
            assert not (run_dir / ".lock").exists() and max(checkpoint_steps(run_dir)) > ckpt
    final = run([*args, "--resume"], workdir)
    assert final.returncode == 0, final.stderr
    assert "stale lock of pid" in final.stderr
    out, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err
    ours, theirs = latest_state(run_dir), latest_state(workdir / "straight")
    assert int(ours["['step']"]) == STEPS
    assert_same_state(ours, theirs)
    print(f"faults injected (checkpoints on disk after each): {record}")
