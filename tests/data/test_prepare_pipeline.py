"""The prepare pipeline on real files: inputs, labels, splits, normalisation round trips, seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pointset_cli.data import normalize
from pointset_cli.data.prepare import PrepareOptions, assign_splits, collect_inputs, prepare
from pointset_cli.data.schema import SetDataset, validate
from pointset_cli.errors import UsageError
from pointset_cli.io import read_shape
from pointset_cli.io.mnist import read_mnist

BUNDLED_DATA = Path(__file__).resolve().parents[2] / "data"
SUBSET = BUNDLED_DATA / "modelnet10_subset"
MNIST = BUNDLED_DATA / "mnist_t10k"


def test_mnist_folder_is_one_input_and_skips_labels_and_notes():
    sources, _ = collect_inputs([str(MNIST)])
    assert [s.path.name for s in sources] == ["t10k-images-idx3-ubyte.gz"]
    assert sources[0].mnist


def test_labels_file_alone_is_a_usage_error():
    with pytest.raises(UsageError, match="labels file"):
        collect_inputs([str(MNIST / "t10k-labels-idx1-ubyte.gz")])


def test_layout_gives_classes_and_splits():
    sources, _ = collect_inputs([str(SUBSET)])
    assert len(sources) == 240
    assert {s.label for s in sources} == {"chair", "sofa", "toilet"}
    assert sum(s.split == "train" for s in sources) == 180 and sum(s.split == "test" for s in sources) == 60
    assert sources[0].name == "chair/test/chair_0890.pcd"


@pytest.fixture(scope="module")
def raw_subset() -> dict[str, np.ndarray]:
    return {p.relative_to(SUBSET).as_posix(): read_shape(p).points for p in SUBSET.rglob("*.pcd")}


@pytest.mark.parametrize("kind", ["none", "sphere", "cube", "global"])
def test_normalisation_round_trips_to_source_units(tmp_path, raw_subset, kind):
    out = tmp_path / f"{kind}.h5"
    prepare([str(SUBSET)], out, PrepareOptions(normalize=kind))
    with SetDataset(out) as ds:
        idx = np.arange(0, ds.n_sets, 7)
        points, mask, _ = ds.read(idx)
        back = ds.denormalize(points, idx)
        for row, i in enumerate(idx):
            raw = raw_subset[ds.names([i])[0]]
            scale = float(ds._scale[i])
            np.testing.assert_allclose(back[row][mask[row]], raw, rtol=0, atol=1e-5 * max(scale, 1.0))
        real = points[mask]
        if kind == "sphere":
            assert np.linalg.norm(points, axis=2).max() <= 1 + 1e-6
        if kind == "cube":
            assert np.abs(real).max() == pytest.approx(1.0, abs=1e-6)
    if kind == "global":
        with SetDataset(out) as ds:
            assert len(np.unique(ds._scale)) == 1 and len(np.unique(ds._center, axis=0)) == 1
            train, _, _ = ds.read(ds.indices("train"))
            sizes = ds.sizes("train")
            train_real = np.concatenate([t[:n] for t, n in zip(train, sizes)]).astype(np.float64)
            np.testing.assert_allclose(train_real.mean(0), 0, atol=1e-4)
            assert train_real.std() == pytest.approx(1.0, rel=1e-4)
            # fitted on the train split only
            center, scale = normalize.global_stats([p for name, p in raw_subset.items() if "/train/" in name])
            np.testing.assert_allclose(ds._center[0], center, rtol=1e-6)
            assert ds._scale[0] == pytest.approx(scale, rel=1e-6)


def test_fraction_splits_are_seeded(tmp_path):
    def split_of(seed: int):
        out = tmp_path / f"s{seed}.h5"
        opts = PrepareOptions(points=64, val_fraction=0.2, test_fraction=0.1, split_from_layout=False, seed=seed)
        prepare([str(SUBSET)], out, opts, force=True)
        with SetDataset(out) as ds:
            return ds.indices("val"), ds.indices("test"), ds.read(np.arange(5))[0]

    val, test, pts = split_of(1)
    assert len(val) == 48 and len(test) == 24 and not set(val) & set(test)
    val2, test2, pts2 = split_of(1)
    np.testing.assert_array_equal(val, val2)
    np.testing.assert_array_equal(pts, pts2)
    val3, _, pts3 = split_of(2)
    assert not np.array_equal(val, val3) and not np.array_equal(pts, pts3)


def test_stratified_splits_keep_each_digits_share():
    labels = read_mnist(MNIST / "t10k-images-idx3-ubyte.gz")[1][:997]  # real, unequal class sizes
    counts = np.bincount(labels)

    def splits(stratify: bool, layout=None):
        opts = PrepareOptions(val_fraction=0.15, test_fraction=0.1, stratify=stratify, seed=3)
        split = assign_splits(layout or [None] * len(labels), opts, labels)
        return split, [np.bincount(labels[split == code], minlength=10) for code in (1, 2)]

    _, (val, test) = splits(True)
    assert test.sum() == round(0.1 * 997) and val.sum() == round(0.15 * 997)
    assert np.abs(test - 0.1 * counts).max() <= 1 and np.abs(val - 0.15 * counts).max() <= 2
    assert np.abs(splits(False)[1][1] - 0.1 * counts).max() > 1  # what stratifying fixes
    # train/test folders without val: val comes from the layout's train sets, in each class's share
    layout = ["test" if i % 4 == 0 else "train" for i in range(len(labels))]
    split, (val, _) = splits(True, layout)
    assert (split[::4] == 2).all() and (split[np.arange(len(labels)) % 4 != 0] != 2).all()
    assert np.abs(val - 0.15 * np.bincount(labels[split != 2], minlength=10)).max() <= 1


def test_meshes_are_sampled_to_the_asked_count(tmp_path, shared_data):
    out = tmp_path / "meshes.h5"
    report = prepare([str(shared_data / "meshes")], out, PrepareOptions(points=300, sampler="fps"))
    n_meshes = len([p for p in (shared_data / "meshes").iterdir() if p.suffix in (".ply", ".obj")])
    assert report.n_sets == n_meshes and report.classes == ["meshes"] and report.sampler == "fps"
    summary = validate(out)
    assert summary["sizes"]["min"] == summary["sizes"]["max"] == 300
    assert summary["n_points"] == 300


def test_mnist_csv_gives_500_digits_per_class(tmp_path, shared_data):
    out = tmp_path / "csv.h5"
    report = prepare([str(shared_data / "mnist5k_train")], out, PrepareOptions(test_fraction=0.2))
    assert report.n_sets == 5000 and report.dim == 2 and report.normalization == "none"
    assert report.splits == {"train": 4000, "val": 0, "test": 1000}
    summary = validate(out)
    assert [a + b for a, b in zip(summary["class_counts"]["train"], summary["class_counts"]["test"])] == [500] * 10
    assert 0 <= min(summary["range"]["min"]) and max(summary["range"]["max"]) <= 1
