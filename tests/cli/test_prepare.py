"""`pointset prepare` through the command line: every option, bad input, no partial output."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pointset_cli.data.schema import SetDataset

REPO = Path(__file__).resolve().parents[2]
SUBSET = REPO / "data" / "modelnet10_subset"
MNIST = REPO / "data" / "mnist_t10k"
CORPUS = REPO / "tests" / "io" / "corpus"


def run_json(cli, args):
    result = cli(["prepare", *args, "--format", "json", "--quiet"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def contents(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as f:
        return {k: f[k][:] for k in f}


@pytest.mark.slow
def test_bundled_mnist_threshold_and_max_points(cli, tmp_path):
    report = run_json(cli, [MNIST, "-o", tmp_path / "a.h5"])
    assert report["n_sets"] == 10000 and report["n_files"] == 1 and report["classes"] == [str(d) for d in range(10)]
    assert report["splits"]["train"] == 10000 and report["normalization"] == "none" and report["sampler"] == "mnist"
    assert 200 < report["n_max"] <= 2048
    capped = run_json(cli, [MNIST, "-o", tmp_path / "b.h5", "--threshold", "200", "--max-points", "100"])
    with SetDataset(tmp_path / "a.h5") as a, SetDataset(tmp_path / "b.h5") as b:
        assert (a.sizes() > np.minimum(b.sizes(), 99)).all()  # a higher threshold keeps fewer pixels
        assert b.sizes().max() == 100 == capped["n_max"]


@pytest.mark.slow
def test_layout_points_sampler_seed_and_workers(cli, tmp_path):
    args = [str(SUBSET / "*" / "*" / "*[05].pcd"), "--points", "128", "--sampler", "fps", "--seed", "3"]
    one = run_json(cli, [*args, "-o", tmp_path / "w1.h5", "--workers", "1"])
    two = run_json(cli, [*args, "-o", tmp_path / "w2.h5", "--workers", "2"])
    assert one == {**two, "output": one["output"]}
    assert one["splits"] == {"train": 36, "val": 0, "test": 12} and one["classes"] == ["chair", "sofa", "toilet"]
    a, b = contents(tmp_path / "w1.h5"), contents(tmp_path / "w2.h5")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    run_json(cli, [*args[:-1], "4", "-o", tmp_path / "s4.h5", "--workers", "1"])
    assert not np.array_equal(contents(tmp_path / "s4.h5")["points"], a["points"])


def test_fractions_and_layout_switch(cli, tmp_path):
    report = run_json(cli, [SUBSET, "-o", tmp_path / "f.h5", "--points", "32", "--no-split-from-layout",
                            "--val-fraction", "0.25", "--test-fraction", "0.25", "--normalize", "cube"])
    assert report["splits"] == {"train": 120, "val": 60, "test": 60} and report["normalization"] == "cube"
    report = run_json(cli, [SUBSET, "-o", tmp_path / "g.h5", "--points", "32", "--split-from-layout",
                            "--val-fraction", "0.5"])
    # train/test folders but no val folder: val is drawn from the layout's training sets, never from test
    assert report["splits"] == {"train": 90, "val": 90, "test": 60}
    report = run_json(cli, [SUBSET, "-o", tmp_path / "t.h5", "--points", "32", "--no-split-from-layout",
                            "--test-fraction", "1"])  # a held-out file: every set is test
    assert report["splits"] == {"train": 0, "val": 0, "test": 240}


def test_stratify_gives_each_class_its_share(cli, tmp_path):
    def val_per_class(*extra):
        out = tmp_path / f"s{len(extra)}.h5"
        run_json(cli, [SUBSET, "-o", out, "--points", "8", "--no-split-from-layout", "--val-fraction", "0.2", *extra])
        with SetDataset(out) as ds:
            return np.bincount(ds.read(ds.indices("val"))[2], minlength=3)

    assert val_per_class("--stratify").tolist() == [16, 16, 16]  # 80 sets per class
    plain = val_per_class()
    assert plain.sum() == 48 and plain.tolist() != [16, 16, 16]  # seed 0 draws unevenly


def test_glob_is_expanded(cli, tmp_path):
    report = run_json(cli, [str(SUBSET / "*" / "train" / "*_000?.pcd"), "-o", tmp_path / "g.h5"])
    assert report["n_sets"] == 3 * 9 and report["splits"]["train"] == 27


def test_meshes_surface_sampling(cli, tmp_path, shared_data):
    report = run_json(cli, [shared_data / "meshes" / "cow.obj", shared_data / "meshes" / "ant.ply",
                            "-o", tmp_path / "m.h5", "--points", "500"])
    assert report["n_sets"] == 2 and report["sampler"] == "surface" and report["n_max"] == 500


def test_poisson_without_open3d_is_a_usage_error(cli, tmp_path, monkeypatch):
    from pointset_cli.data import sampling

    monkeypatch.setattr(sampling, "has_open3d", lambda: False)
    result = cli(["prepare", SUBSET, "-o", tmp_path / "p.h5", "--sampler", "poisson"])
    assert result.exit_code == 2 and "open3d" in one_line_error(result)


def test_table_summary_and_quiet(cli, tmp_path):
    result = cli(["prepare", SUBSET, "-o", tmp_path / "t.h5", "--points", "16", "--quiet"])
    assert result.exit_code == 0 and result.stderr == ""
    assert "240 sets" in result.stdout and "3 classes" in result.stdout


def test_refuses_to_overwrite_without_force(cli, tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"keep me")
    result = cli(["prepare", SUBSET, "-o", out, "--points", "16"])
    assert result.exit_code == 2 and str(out) in one_line_error(result)
    assert out.read_bytes() == b"keep me"
    assert cli(["prepare", SUBSET, "-o", out, "--points", "16", "--force", "-q"]).exit_code == 0
    assert h5py.is_hdf5(out)


@pytest.mark.parametrize("args", [["--points", "8", "--max-points", "8"], ["--val-fraction", "0.6", "--test-fraction", "0.5"],
                                  ["--normalize", "unit"], ["--threshold", "300"], ["--workers", "0"]])
def test_bad_options_exit_2(cli, tmp_path, args):
    result = cli(["prepare", SUBSET, "-o", tmp_path / "x.h5", *args])
    assert result.exit_code == 2
    one_line_error(result)
    assert not (tmp_path / "x.h5").exists()


def test_missing_or_empty_input_exits_1_as_in_every_command(cli, tmp_path, tiny_mnist):
    """One rule: an input that is missing or holds nothing is bad input (1); a command line that
    cannot work is a usage error (2)."""
    (tmp_path / "empty").mkdir()
    result = cli(["prepare", tmp_path / "empty", "-o", tmp_path / "x.h5"])
    assert result.exit_code == 1 and "no input files" in one_line_error(result)
    missing = tmp_path / "nope"
    for args in (["prepare", missing, "-o", tmp_path / "x.h5"], ["prepare", f"{missing}/*.ply", "-o", tmp_path / "x.h5"],
                 ["info", missing], ["sample", missing, "-n", "2"], ["eval", missing],
                 ["export", missing, "-o", tmp_path / "e.npz"], ["train", missing, "--run-dir", tmp_path / "r"],
                 ["eval", "--samples", missing, "--refs", tiny_mnist]):
        result = cli(args)
        assert result.exit_code == 1 and str(missing) in one_line_error(result), (args, result.stderr)
    result = cli(["train", "--run-dir", tmp_path / "r"])
    assert result.exit_code == 2 and "no dataset" in one_line_error(result)


@pytest.fixture()
def mixed_folder(tmp_path) -> Path:
    folder = tmp_path / "in" / "chair" / "train"
    folder.mkdir(parents=True)
    for p in sorted((SUBSET / "chair" / "train").glob("*.pcd"))[:4]:
        shutil.copy(p, folder)
    data = (folder / "chair_0001.pcd").read_bytes()
    (folder / "chair_9999.pcd").write_bytes(data[: len(data) // 2])  # truncated
    return tmp_path / "in"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_file_stops_without_output(cli, tmp_path, mixed_folder, workers):
    out = tmp_path / "x.h5"
    result = cli(["prepare", mixed_folder, "-o", out, "--workers", workers])
    assert result.exit_code == 1
    assert "chair_9999.pcd" in one_line_error(result)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_skip_bad_goes_on_and_lists_skipped(cli, tmp_path, mixed_folder):
    out = tmp_path / "x.h5"
    result = cli(["prepare", mixed_folder, "-o", out, "--skip-bad", "--format", "json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["n_sets"] == 4 and [Path(s["path"]).name for s in report["skipped"]] == ["chair_9999.pcd"]
    assert "skipped 1 bad file" in result.stderr and "chair_9999.pcd" in result.stderr


def corpus_cases() -> list[tuple[str, str]]:
    expected = CORPUS / "EXPECTED.txt"
    if not expected.is_file():
        return []
    rows = [line.split("\t") for line in expected.read_text().splitlines() if line and not line.startswith("#")]
    return [(name, msg) for name, msg in rows]


@pytest.mark.skipif(not corpus_cases(), reason="malformed corpus tests/io/corpus not present")
@pytest.mark.parametrize("name,message", corpus_cases())
def test_malformed_corpus_file_fails_cleanly(cli, tmp_path, name, message):
    out = tmp_path / "x.h5"
    result = cli(["prepare", CORPUS / name, "-o", out])
    assert result.exit_code == 1, result.stderr
    line = one_line_error(result)
    assert name.split("-")[0] in line and message in line
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_whole_modelnet10(cli, tmp_path, shared_data):
    src = shared_data / "modelnet10_pcd1024" / "ModelNet10" / "pcd"
    report = run_json(cli, [src, "-o", tmp_path / "mn10.h5", "--normalize", "sphere"])
    assert report["splits"] == {"train": 3991, "val": 0, "test": 908} and len(report["classes"]) == 10
    assert report["n_max"] == 1024


def test_fifos_and_links_to_devices_are_passed_over_not_read(tmp_path):
    """A FIFO would block the read forever, a link to /dev/zero would read until memory runs out."""
    from pointset_testing.runner import run

    src = tmp_path / "in"
    shutil.copytree(SUBSET / "chair" / "test", src / "chair")
    os.mkfifo(src / "chair" / "pipe.pcd")
    (src / "chair" / "zeros.xyz").symlink_to("/dev/zero")
    result = run(["prepare", src, "-o", tmp_path / "o.h5", "--points", "16", "--format", "json"], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_files"] == 20 and {Path(p["path"]).name for p in report["passed_over"]} == {"pipe.pcd", "zeros.xyz"}
    assert "not a regular file (a FIFO)" in result.stderr and "not a regular file (a character device)" in result.stderr
    named = run(["prepare", src / "chair" / "pipe.pcd", "-o", tmp_path / "p.h5"], tmp_path, timeout=120)
    assert named.returncode == 2 and "pipe.pcd: not a regular file (a FIFO)" in named.stderr


def test_odd_file_names_are_escaped_on_one_line(tmp_path):
    """A line break in a name cannot forge an extra `error:` line; a name that is not UTF-8 is no crash."""
    from pointset_testing.runner import our_lines, run

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SUBSET / "chair" / "test" / "chair_0890.pcd", src / "good.pcd")
    forged = src / "x.ply\nerror: forged"
    forged.write_bytes(b"not a ply file")
    result = run(["prepare", forged, "-o", tmp_path / "o.h5"], tmp_path)
    lines = our_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: '") and "x.ply\\nerror: forged" in lines[0]
    forged.unlink()

    raw = os.fsencode(src) + b"/caf\xe9.xyz"  # Latin-1, not UTF-8
    with open(raw, "wb") as f:
        f.write(b"1 2\n3\n")  # ragged: a bad file
    skipped = run(["prepare", src, "-o", tmp_path / "s.h5", "--skip-bad", "--points", "16"], tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert "caf\\udce9.xyz" in skipped.stderr and "Traceback" not in skipped.stderr
    stopped = run(["prepare", src, "-o", tmp_path / "t.h5", "--points", "16"], tmp_path)
    assert stopped.returncode == 1 and len(our_lines(stopped.stderr)) == 1 and "caf\\udce9.xyz" in stopped.stderr


def _killed_reader(chunk, opts, kind):
    os._exit(9)  # as the kernel's OOM killer would end a reader


def test_a_reader_process_that_dies_is_one_line_not_a_traceback(cli, tmp_path, monkeypatch):
    from pointset_cli.data import prepare

    monkeypatch.setattr(prepare, "_load_chunk", _killed_reader)  # forked workers inherit it
    result = cli(["prepare", SUBSET, "-o", tmp_path / "o.h5", "--workers", "2"])
    assert result.exit_code == 1 and "a reader process died" in one_line_error(result)
    assert not (tmp_path / "o.h5").exists()
