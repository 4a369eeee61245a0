"""Readers on the real files in ../shared/data: meshes, ModelNet10 PCD, MNIST IDX and CSV."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from pointset_cli.io import read_shape
from pointset_cli.io.mnist import image_to_set, read_mnist

MESH_NAMES = ["airplane.ply", "ant.ply", "nut.ply", "sphere.ply", "cow.obj", "fandisk.obj", "suzanne.obj", "teapot.obj"]


@pytest.mark.parametrize("name", MESH_NAMES)
def test_every_mesh_reads_and_matches_trimesh(shared_data, name):
    import trimesh

    path = shared_data / "meshes" / name
    shape = read_shape(path)
    assert shape.points.shape[0] > 0 and shape.points.shape[1] == 3
    assert shape.faces is not None and len(shape.faces) > 0
    assert np.isfinite(shape.points).all()
    assert shape.faces.min() >= 0 and shape.faces.max() < len(shape.points)
    reference = trimesh.load(path, process=False, force="mesh")
    np.testing.assert_allclose(shape.points, reference.vertices, rtol=1e-6, atol=1e-6 * np.abs(shape.points).max())
    assert len(shape.faces) == len(reference.faces)
    if name != "suzanne.obj":  # suzanne has quads, which trimesh splits along the other diagonal
        np.testing.assert_array_equal(shape.faces, reference.faces)
    area = trimesh.Trimesh(shape.points, shape.faces, process=False).area
    assert area == pytest.approx(reference.area, rel=0.02)


def _reference_pcd(path):
    """The straightforward parse: the header lines, then float32 x y z records."""
    data = path.read_bytes()
    end = data.index(b"DATA binary\n") + len(b"DATA binary\n")
    header = dict(line.split(" ", 1) for line in data[:end].decode().splitlines() if not line.startswith("#"))
    n = int(header["POINTS"])
    return np.frombuffer(data[end:], "<f4").reshape(n, 3)


def test_modelnet_pcd_files_read_1024_points(shared_data):
    files = sorted((shared_data / "modelnet10_pcd1024" / "ModelNet10" / "pcd").glob("*/*/*.pcd"))
    assert len(files) == 4899
    for path in files[::49]:  # 100 files across all classes and both splits
        shape = read_shape(path)
        assert shape.points.shape == (1024, 3) and shape.faces is None
        np.testing.assert_array_equal(shape.points, _reference_pcd(path))


def test_mnist_idx_labels_match_raw_file(bundled_data):
    images_path = bundled_data / "mnist_t10k" / "t10k-images-idx3-ubyte.gz"
    images, labels = read_mnist(images_path)
    labels_gz = (bundled_data / "mnist_t10k" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    raw_labels = np.frombuffer(gzip.decompress(labels_gz)[8:], np.uint8)
    raw_images = np.frombuffer(gzip.decompress(images_path.read_bytes())[16:], np.uint8)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels), np.bincount(raw_labels))
    np.testing.assert_array_equal(images.reshape(-1), raw_images)


def test_mnist_csv_has_500_digits_per_class(shared_data):
    images, labels = read_mnist(shared_data / "mnist5k_train" / "mnist_5k.csv.gz")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 500))
    assert images.max() > 200  # pixels really are 0..255 intensities, not a scaled copy


def test_image_to_set_sizes_and_orientation(bundled_data):
    images, _ = read_mnist(bundled_data / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
    sets = [image_to_set(image, 127) for image in images]
    sizes = np.array([len(s) for s in sets])
    np.testing.assert_array_equal(sizes, (images > 127).sum(axis=(1, 2)))
    assert 10 <= sizes.min() <= 30 and 200 <= sizes.max() <= 300 and 80 <= sizes.mean() <= 130
    points = np.concatenate(sets)
    assert points.dtype == np.float32 and points.min() >= 0 and points.max() <= 1
    # upright: the topmost lit pixel of the first digit has the largest y
    rows, cols = np.nonzero(images[0] > 127)
    assert sets[0][:, 1].max() == pytest.approx(1 - rows.min() / 27)
    assert sets[0][:, 0].min() == pytest.approx(cols.min() / 27)
