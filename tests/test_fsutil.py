"""Atomic outputs: the temporary a kill -9 leaves behind is removed on the next write of that file."""

from __future__ import annotations

import os
import subprocess
import sys

from pointset_cli.fsutil import atomic_path


def test_stale_temporaries_of_dead_writers_go_live_ones_and_others_stay(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "data.h5"
    stale = tmp_path / f".data.h5.{dead.pid}-k3j2.tmp"
    live = tmp_path / f".data.h5.{os.getppid()}-x9.tmp"  # the test runner's parent: alive
    other = tmp_path / f".other.h5.{dead.pid}-k3j2.tmp"  # another file's temporary
    mine = tmp_path / "data.h5.tmp"  # not our pattern: a user's file
    for p in (stale, live, other, mine):
        p.write_bytes(b"x" * 1000)
    with atomic_path(out) as tmp:
        assert tmp.name.startswith(f".data.h5.{os.getpid()}-") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
    assert out.read_text() == "new"
    assert not stale.exists() and live.exists() and other.exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, other.name, mine.name])
