"""SetDataset reads what write_dataset wrote, in any index order; bad inputs are refused."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from pointset_cli.data.schema import SPLITS, SetDataset, validate, write_dataset
from pointset_cli.errors import InputError, OutputExistsError


@pytest.fixture(scope="module")
def digits(bundled_data):
    """Twelve real MNIST digits as sets of different sizes."""
    from pointset_cli.io.mnist import image_to_set, read_mnist

    images, labels = read_mnist(bundled_data / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
    return [image_to_set(img, 127) for img in images[:12]], labels[:12].astype(np.int32)


def write(path, sets, labels, **kw):
    m = len(sets)
    attrs = {"normalization": "none", "sampler": "mnist", "seed": 0, "n_points": 0, "max_points": 2048,
             "provenance": {"argv": ["test"]}}
    write_dataset(path, sets, labels, [f"d#{i}" for i in range(m)], np.arange(m) % 3, [str(d) for d in range(10)],
                  np.zeros((m, 2)), np.ones(m), attrs, **kw)


def test_read_returns_sets_in_the_asked_order(tmp_path, digits):
    sets, labels = digits
    write(tmp_path / "d.h5", sets, labels, workers=2)
    with SetDataset(tmp_path / "d.h5") as ds:
        assert (ds.n_sets, ds.n_max, ds.dim) == (12, max(map(len, sets)), 2)
        idx = np.array([7, 2, 7, 0])
        points, mask, got = ds.read(idx)
        assert points.shape == (4, ds.n_max, 2) and points.dtype == np.float32
        for row, i in enumerate(idx):
            np.testing.assert_array_equal(points[row][mask[row]], sets[i])
            assert not points[row][~mask[row]].any()
        np.testing.assert_array_equal(got, labels[idx])
        for k, name in enumerate(SPLITS):
            np.testing.assert_array_equal(ds.indices(name), np.arange(k, 12, 3))
        np.testing.assert_array_equal(ds.sizes(), [len(s) for s in sets])
        assert ds.names([3]) == ["d#3"]


def test_validate_summarises(tmp_path, digits):
    sets, labels = digits
    write(tmp_path / "d.h5", sets, labels)
    s = validate(tmp_path / "d.h5")
    assert s["n_sets"] == 12 and s["splits"] == {"train": 4, "val": 4, "test": 4}
    assert s["sizes"]["min"] == min(map(len, sets)) and sum(s["sizes"]["histogram"]["counts"]) == 12
    assert sum(map(sum, s["class_counts"].values())) == 12


def test_write_refuses_broken_inputs_and_existing_files(tmp_path, digits):
    sets, labels = digits
    with pytest.raises(ValueError, match="labels"):
        write(tmp_path / "a.h5", sets, labels + 10)
    bad = [s.copy() for s in sets]
    bad[3][0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        write(tmp_path / "a.h5", bad, labels)
    assert not list(tmp_path.iterdir())  # nothing left behind
    write(tmp_path / "a.h5", sets, labels)
    with pytest.raises(OutputExistsError):
        write(tmp_path / "a.h5", sets, labels)


def test_open_refuses_a_non_hdf5_file(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="not an HDF5 file"):
        SetDataset(path)


def _swap(path, name, make):
    """Replace member `name` of the dataset file at `path` by what make(f, name) creates."""
    with h5py.File(path, "a") as f:
        del f[name]
        make(f, name)


def _external_raw(f, name):
    f.create_dataset(name, shape=(12,), dtype="f4", external=[("/etc/passwd", 0, h5py.h5f.UNLIMITED)])


def _virtual(f, name):
    layout = h5py.VirtualLayout(shape=(12,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(f.filename) + ".other.h5", "scale", shape=(12,))
    f.create_virtual_dataset(name, layout)


def _unknown_filter(f, name):
    """Scales stored through filter 30001, which no HDF5 build has: reading it would look for a plugin."""
    f.create_dataset(name, data=np.ones(12, np.float32), chunks=(12,), compression=30001, allow_unknown_filter=True)


@pytest.mark.parametrize(
    ("member", "make", "says"),
    [
        ("scale", _external_raw, "dataset 'scale' keeps its bytes in an external file ('/etc/passwd')"),
        ("points", lambda f, n: f.__setitem__(n, h5py.ExternalLink("/etc/other.h5", "/points")),
         "member 'points' is an external link (to /etc/other.h5)"),
        ("scale", _virtual, "dataset 'scale' is virtual"),
        ("labels", lambda f, n: f.__setitem__(n, h5py.SoftLink("/labels")), "member 'labels' is a soft link"),
        ("names", lambda f, n: f.create_group(n), "member 'names' is a group"),
        ("scale", _unknown_filter, "dataset 'scale' is stored with HDF5 filter 30001"),
    ],
)
def test_a_dataset_file_that_reaches_outside_itself_is_refused(tmp_path, digits, cli, member, make, says):
    sets, labels = digits
    path = tmp_path / "d.h5"
    write(path, sets, labels)
    _swap(path, member, make)
    with pytest.raises(InputError, match=re.escape(f"{path}: {says}")):
        SetDataset(path)
    for command in (["info", path], ["train", path, "--steps", "1", "--run-dir", tmp_path / "run"]):
        result = cli(command)
        assert result.exit_code == 1 and says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_the_scored_split_is_test_else_val(tmp_path):
    """What `eval RUN` and `sample --reconstruct` score without --split (a dataset prepared with
    --val-fraction alone has no test split)."""
    from pointset_cli.errors import UsageError
    from pointset_testing.tinydata import make_tiny_mnist

    for name, kw, default, held in (("all.h5", {}, "test", "train (40), val (10), test (10)"),
                                    ("no_test.h5", {"no_test": True}, "val", "train (50), val (10)"),
                                    ("no_val.h5", {"no_val": True}, "test", "train (50), test (10)")):
        with SetDataset(make_tiny_mnist(tmp_path / name, **kw)) as ds:
            assert (ds.scored_split(), ds.scored_split("train"), ds.held_splits()) == (default, "train", held)
            with pytest.raises(UsageError, match="unknown split 'tset'; choose one of train, val, test"):
                ds.scored_split("tset")
