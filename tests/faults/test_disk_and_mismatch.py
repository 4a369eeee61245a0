"""A full disk, an unwritable output and a foreign checkpoint: one-line errors, nothing earlier lost.

The full disk is a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) on the child process, so every
write past it fails with EFBIG as on a full file system; it needs no mount and no root.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from pointset_testing.runner import SETS, checkpoint_steps, file_size_limit, our_lines, start

LIMIT = 4096  # bytes: config and small records fit, a checkpoint or a dataset does not
BUNDLED_MNIST = Path(__file__).resolve().parents[2] / "data" / "mnist_t10k"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _finish(procs: dict[str, tuple]) -> dict[str, tuple]:
    """Wait for every named child; -> name: (returncode, stderr, *extra)."""
    out = {}
    for name, (proc, *extra) in procs.items():
        stderr = proc.communicate(timeout=600)[1]
        out[name] = (proc.returncode, stderr, *extra)
    return out


def _foreign_run(work: Path, name: str) -> Path:
    """A copy of the trained run holding the checkpoints of the other one (latent size 9, config says 8)."""
    run_copy = work / name
    shutil.copytree(work / "run", run_copy)
    shutil.rmtree(run_copy / "checkpoints")
    shutil.copytree(work / "other" / "checkpoints", run_copy / "checkpoints")
    return run_copy


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_mnist):
    """A trained two-step run (and one of another latent size), with a warm numba cache for the children."""
    work = tmp_path_factory.mktemp("disk")
    (work / "tiny.h5").symlink_to(tiny_mnist)
    env = {"NUMBA_CACHE_DIR": str(work / "numba")}
    for name, extra in (("run", []), ("other", ["--latent-dim", "9"])):  # one at a time: one numba cache entry
        rc, stderr = _finish({name: (start(["train", "tiny.h5", *SETS, "--steps", "2", "--run-dir", name, "-q",
                                            *extra], work, env),)})[name]
        assert rc == 0, (name, stderr)
    return work, env


@pytest.mark.slow
def test_full_disk_and_unwritable_outputs_leave_earlier_outputs_intact(work):
    work, env = work
    run_copy = work / "full"
    shutil.copytree(work / "run", run_copy)
    checkpoints = _digest(run_copy / "checkpoints")
    (work / "a_file").write_text("not a folder")
    for name in ("old.h5", "old.npz", "samples.h5"):
        (work / name).write_bytes(b"previous output " + name.encode())
    full = file_size_limit(LIMIT)
    jobs = {
        "train": ["train", "--resume", "--run-dir", run_copy, "--steps", "6", "-q"],
        "prepare": ["prepare", BUNDLED_MNIST, "-o", "old.h5", "--force", "-q"],
        "sample": ["sample", "run", "-n", "64", "--format", "h5", "-o", "samples.h5", "--force", "-q"],
        "export": ["export", "run", "--what", "model", "--format", "npz", "-o", "old.npz", "--force", "-q"],
    }
    unwritable = {
        "train": ["train", "tiny.h5", *SETS, "--steps", "2", "--run-dir", "a_file/run", "-q"],
        "prepare": ["prepare", BUNDLED_MNIST, "-o", "a_file/d.h5", "-q"],
        "sample": ["sample", "run", "-n", "2", "--format", "npy", "-o", "a_file/s", "-q"],
        "export": ["export", "run", "--what", "model", "--format", "npz", "-o", "a_file/m.npz", "-q"],
    }
    # The children find the Chamfer kernel in the numba cache the fixture warmed, so nothing is compiled
    # (or saved) on the full disk.
    procs = {f"full {k}": (start(v, work, env, preexec=full),) for k, v in jobs.items()}
    procs |= {f"unwritable {k}": (start(v, work, env),) for k, v in unwritable.items()}
    results = _finish(procs)
    for name, (rc, stderr) in results.items():
        lines = our_lines(stderr)  # for training, also none of Orbax's writer-thread tracebacks
        assert len(lines) == 1, (name, stderr[-3000:])
        assert rc == 1 and lines[-1].startswith("error: ") and "internal error" not in lines[-1], (name, stderr[-3000:])
    # The first save that failed is named: the best checkpoint of step 3's validation (it was the next
    # save's, once the write had finished in the background), and no half-written folder stays.
    assert f"{run_copy / 'checkpoints' / 'best' / '3'}: cannot write checkpoint" in results["full train"][1]
    assert not [p for p in (run_copy / "checkpoints").rglob("*") if "tmp" in p.name]
    for name in ("old.h5", "old.npz", "samples.h5"):
        assert (work / name).read_bytes() == b"previous output " + name.encode()
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]  # no temporary files left behind
    assert {k: v for k, v in _digest(run_copy / "checkpoints").items() if "tmp" not in k} == checkpoints
    assert checkpoint_steps(run_copy) == [2]


@pytest.mark.slow
def test_resume_with_a_foreign_checkpoint_is_refused_naming_the_difference(work):
    work, env = work
    run_copy = _foreign_run(work, "foreign")
    proc = start(["train", "--resume", "--run-dir", run_copy, "--steps", "4", "-q"], work, env)
    rc, stderr = _finish({"resume": (proc,)})["resume"]
    lines = our_lines(stderr)
    assert rc == 1 and len(lines) == 1, stderr
    assert "does not match the configured model" in lines[0], lines[0]
    assert re.search(r"params\['[^']+'\]\['[wb]'\]: shape \([^)]*9[^)]*\) saved, \([^)]*8[^)]*\) configured",
                     lines[0]), lines[0]  # the parameter and both shapes (latent size 9 saved, 8 configured)
    assert checkpoint_steps(run_copy) == [2]  # nothing written over it


@pytest.mark.slow
def test_resume_past_a_corrupt_checkpoint_says_so_in_one_line(work):
    work, env = work
    run_copy = work / "corrupt"
    shutil.copytree(work / "run", run_copy)

    def resume(steps: int) -> tuple[int, str]:
        proc = start(["train", "--resume", "--run-dir", run_copy, "--steps", steps, "-q"], work, env)
        return _finish({"resume": (proc,)})["resume"]

    rc, stderr = resume(4)
    assert rc == 0 and checkpoint_steps(run_copy) == [2, 4], stderr
    for f in (run_copy / "checkpoints" / "latest" / "4").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "METADATA" not in f.name:
            f.write_bytes(b"\0" * 7)  # truncated garbage
    rc, stderr = resume(6)
    # Orbax's threads used to add dozens of "Event loop is closed" / "exception was never retrieved" tracebacks
    lines = our_lines(stderr)
    assert rc == 0 and len(lines) == 1, stderr
    assert lines[0].startswith("warning: ") and "unreadable checkpoint" in lines[0] and "using step 2" in lines[0]
    assert checkpoint_steps(run_copy) == [4, 6]


@pytest.mark.slow
def test_sample_eval_export_of_a_foreign_checkpoint_name_the_difference(work):
    work, env = work
    run_copy = _foreign_run(work, "foreign_use")
    jobs = {
        "sample": ["sample", run_copy, "-n", "2", "-o", work / "foreign_samples", "-q"],
        "eval": ["eval", run_copy, "-q"],
        "export": ["export", run_copy, "--what", "model", "--format", "npz", "-o", work / "foreign.npz", "-q"],
    }
    results = _finish({name: (start(args, work, env),) for name, args in jobs.items()})
    for name, (rc, stderr) in results.items():
        lines = our_lines(stderr)
        assert rc == 1 and len(lines) == 1, (name, stderr[-3000:])
        assert "checkpoint is not of the model config.yaml describes" in lines[0], (name, lines[0])
        assert "internal error" not in lines[0] and re.search(r"shape \([^)]*9[^)]*\) saved", lines[0]), lines[0]
    assert not (work / "foreign_samples").exists() and not (work / "foreign.npz").exists()
