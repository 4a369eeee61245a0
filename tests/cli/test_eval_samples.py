"""`pointset eval --samples/--refs` on .npy arrays and on a folder of real point files."""

from __future__ import annotations

import json
import shutil

import numpy as np

from pointset_cli import metrics


def test_eval_npy_json_matches_library(cli, tmp_path):
    rng = np.random.default_rng(0)
    s, r = rng.normal(size=(2, 6, 24, 3)).astype(np.float32) * 0.2
    np.save(tmp_path / "s.npy", s)
    np.savez(tmp_path / "r.npz", points=r)
    result = cli(["eval", "--samples", tmp_path / "s.npy", "--refs", tmp_path / "r.npz", "--format", "json", "--quiet"])
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    want = metrics.generation_metrics(s, r)
    assert set(got) == set(want) | {"normalization", "units", "table_scale", "notes"}
    for key in metrics.GENERATION_METRICS:
        assert abs(got[key] - want[key]) < 1e-6
    assert (got["n_samples"], got["n_refs"], got["n_points"]) == (6, 6, 24)
    # How it was computed: the units, the table's factors, the EMD solver, the JSD grid and frame.
    assert got["normalization"] == {"samples": "as given", "refs": "as given"}
    assert got["units"]["mmd_cd"] == "squared units" and got["table_scale"]["mmd_cd"] == 1e3
    assert got["emd_solver"] == want["emd_solver"] and (got["jsd_resolution"], got["jsd_protocol"]) == (28, "raw")


def test_eval_table_title_says_how_and_a_note_warns_of_points_outside_the_jsd_grid(cli, tmp_path, tiny_mnist):
    """MNIST digits lie in [0, 1]^2: most of their points are outside JSD's ball of radius 0.5."""
    args = ["eval", "--samples", tiny_mnist, "--samples-split", "val", "--refs", tiny_mnist, "--refs-split", "test",
            "--metrics", "mmd_cd,jsd"]
    result = cli(args)
    assert result.exit_code == 0, result.stderr
    title = " ".join(result.stdout.split())
    assert ("10 samples vs 10 references" in title and "normalisation: samples none, references none" in title
            and "JSD on a 28x28 grid in the ball of radius 0.5 (raw protocol)" in title)
    assert "JSD: points outside its grid" in result.stderr and "--protocol pointflow" in result.stderr
    fitted = cli([*args, "--protocol", "pointflow", "--format", "json"])
    report = json.loads(fitted.stdout)
    assert report["jsd_outside_refs"] == 0.0 and report["jsd_protocol"] == "pointflow" and report["jsd_scale"] > 0.6
    assert "JSD: points outside" not in fitted.stderr
    bad = cli([*args, "--protocol", "pointfl0w"])
    assert bad.exit_code == 2 and "unknown --protocol 'pointfl0w'" in bad.stderr


def test_each_phase_of_the_progress_has_its_own_count_and_clock(capsys, monkeypatch):
    """One shared bar went back to lower counts, and once a count reached its total the bar's clock
    stopped and its time left read 0:00:00 for every later phase."""
    from pointset_cli.cli import _common
    from pointset_cli.cli.evaluate import _phases

    bar = _common.make_progress(quiet=True)  # rich's Progress, not drawn
    report = _phases(bar)
    for phase, done, total in (("CD pairs", 0, 10), ("CD pairs", 10, 10), ("EMD pairs", 0, 4), ("EMD pairs", 2, 4)):
        report(phase, done, total)
    cd, emd = bar.tasks
    assert (cd.description, cd.finished, emd.description, emd.completed, emd.finished) == (
        "CD pairs", True, "EMD pairs", 2, False)
    assert emd.finished_time is None and emd.time_remaining != 0.0
    # Without a terminal: plain lines, each naming its phase.
    monkeypatch.setattr(_common, "QUIET_SECONDS", 0.0)
    report = _phases(_common.LineProgress())
    report("generation, model: CD pairs", 0, 10)
    report("generation, model: CD pairs", 10, 10)
    report("generation, oracle: CD pairs", 5, 10)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("generation, model: CD pairs 10/10") and lines[1].startswith(
        "generation, oracle: CD pairs 5/10") and len(lines) == 2


def test_eval_folder_of_pcd_files_table_and_subset(cli, tmp_path, bundled_data):
    src = sorted((bundled_data / "modelnet10_subset/chair/test").glob("*.pcd"))
    for name, files in (("s", src[:3]), ("r", src[3:7])):
        (tmp_path / name).mkdir()
        for f in files:
            shutil.copy(f, tmp_path / name / f.name)
    result = cli(["eval", "--samples", tmp_path / "s", "--refs", tmp_path / "r", "--metrics", "mmd_cd,cov_cd"])
    assert result.exit_code == 0, result.stderr
    assert "MMD-CD (x10^3)" in result.stdout and "3 samples vs 4 references, 1024 points" in result.stdout
    sub = cli(["eval", "--samples", tmp_path / "s", "--refs", tmp_path / "r", "--metrics", "cov_cd", "--max-sets", "2", "--format", "json"])
    assert json.loads(sub.stdout)["n_refs"] == 2


def test_eval_errors_are_one_line(cli, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 4)))
    np.save(tmp_path / "ok.npy", np.zeros((3, 4, 3), np.float32))
    cases = [
        (["eval", "--samples", tmp_path / "bad.npy", "--refs", tmp_path / "ok.npy"], 1, "expected a numeric array"),
        (["eval", "--samples", tmp_path / "ok.npy", "--refs", tmp_path / "ok.npy", "--metrics", "fid"], 2, "unknown metric"),
        (["eval", "--samples", tmp_path / "ok.npy"], 2, "--refs"),
    ]
    for args, code, text in cases:
        result = cli(args)
        assert result.exit_code == code and text in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_headers_that_promise_more_than_the_file_holds_are_refused_before_allocating(cli, tmp_path, tiny_mnist):
    """A 1e12-set NPY header and an HDF5 dataset claiming 5e7 sets: one line naming the file, at once."""
    import h5py

    refs = tmp_path / "refs.npy"
    np.save(refs, np.zeros((4, 8, 2), np.float32))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 8, 2), }".ljust(117) + "\n"
    huge = tmp_path / "huge.npy"
    huge.write_bytes(b"\x93NUMPY\x01\x00" + np.array([len(header)], "<u2").tobytes() + header.encode() + bytes(64))
    result = cli(["eval", "--samples", huge, "--refs", refs, "--metrics", "mmd_cd"])
    assert result.exit_code == 1 and f"{huge}: truncated NPY: header promises" in result.stderr

    claims = tmp_path / "claims.h5"
    shutil.copy(tiny_mnist, claims)
    with h5py.File(claims, "r+") as f:
        m = 50_000_000
        for name in ("sizes", "labels", "split", "scale", "center", "names", "points"):
            old = f[name]
            shape, dtype, chunks = (m, *old.shape[1:]), old.dtype, (1, *old.shape[1:]) if name == "points" else None
            del f[name]
            f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks or True)  # nothing stored
    for command in (["info", claims], ["eval", "--samples", claims, "--refs", refs, "--metrics", "mmd_cd"]):
        result = cli(command)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and "claims 50,000,000 sets but stores 0 chunks" in lines[0]


def test_split_applies_to_the_hdf5_inputs_only_and_an_empty_split_says_where_sets_are(cli, tmp_path, tiny_mnist):
    """README's recipe `eval --samples samples.npy --refs DATA.h5 --split test` (it exited 2), and
    samples written by `sample --format h5` (all in split train) scored against a test split."""
    from pointset_cli.data.schema import SetDataset, write_dataset

    with SetDataset(tiny_mnist) as ds:
        test_points, test_mask, _ = ds.read(ds.indices("test"))
        train_points, train_mask, _ = ds.read(ds.indices("train"))
    np.save(tmp_path / "samples.npy", train_points[:8])
    attrs = {"normalization": "none", "sampler": "mnist", "seed": 0, "n_points": 0, "max_points": 2048,
             "provenance": {"argv": ["test"]}}
    write_dataset(tmp_path / "samples.h5", [p[m] for p, m in zip(train_points[:8], train_mask[:8])],
                  np.zeros(8, np.int32), [f"s{i}" for i in range(8)], np.zeros(8, np.int8), ["0"],
                  np.zeros((8, 2)), np.ones(8), attrs)
    score = ["--refs", tiny_mnist, "--split", "test", "--metrics", "mmd_cd", "--format", "json", "-q"]
    # An array has no mask: its zero rows are points too.
    for samples, sample_mask in ((["--samples", tmp_path / "samples.npy"], None),
                                 (["--samples", tmp_path / "samples.h5", "--samples-split", "train"], train_mask[:8])):
        result = cli(["eval", *samples, *score])
        assert result.exit_code == 0, result.stderr
        got = json.loads(result.stdout)
        want = metrics.generation_metrics(train_points[:8], test_points, sample_mask=sample_mask, ref_mask=test_mask,
                                          metrics=("mmd_cd",))["mmd_cd"]
        assert (got["n_samples"], got["n_refs"]) == (8, 10) and abs(got["mmd_cd"] - want) < 1e-6
    result = cli(["eval", "--samples", tmp_path / "samples.h5", *score])
    assert result.exit_code == 1 and "split 'test' holds no sets; sets are in: train (8)" in result.stderr
    for flag, args in (("--split", ["--split", "tset"]), ("--samples-split", ["--samples-split", "test"])):
        result = cli(["eval", "--samples", tmp_path / "samples.npy", "--refs", tiny_mnist, *args, "-q"])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "unknown split 'tset'" in cli(["eval", "--samples", tmp_path / "samples.npy", "--refs", tiny_mnist,
                                          "--split", "tset"]).stderr


def test_eval_finds_emd_neighbours_by_bounds_with_the_all_pairs_results(cli, tmp_path):
    from pointset_testing.setdata import modelnet_chairs

    chairs = np.stack(modelnet_chairs(12, 96, np.random.default_rng(3)))
    np.save(tmp_path / "s.npy", chairs[:6])
    np.save(tmp_path / "r.npy", chairs[6:])
    args = ["eval", "--samples", tmp_path / "s.npy", "--refs", tmp_path / "r.npy", "--metrics",
            "mmd_emd,cov_emd,nna_emd", "--emd-solver", "scipy"]
    bounded = json.loads(cli([*args, "--format", "json"]).stdout)
    every = json.loads(cli([*args, "--format", "json", "--emd-search", "all"]).stdout)
    for key in ("mmd_emd", "cov_emd", "nna_emd"):
        assert bounded[key] == every[key], key
    assert bounded["emd_pairs"] == 36 + 2 * 15 and bounded["emd_pairs_solved"] < bounded["emd_pairs"]
    assert "emd_pairs_solved" not in every
    table = " ".join(cli(args).stdout.split())
    assert f"EMD-nearest sets from {bounded['emd_pairs_solved']} of 66 pairs" in table
    bad = cli([*args, "--emd-search", "some"])
    assert bad.exit_code == 2 and "unknown --emd-search 'some'" in bad.stderr
