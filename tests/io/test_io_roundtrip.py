"""write_points then read_shape gives the same points, for every writable format."""

from __future__ import annotations

import numpy as np
import pytest

from pointset_cli.errors import OutputExistsError, UsageError
from pointset_cli.io import read_shape, write_points

FORMATS = [("ply", True), ("ply", False), ("xyz", False), ("npy", True), ("npz", True), ("obj", False), ("pcd", True)]


@pytest.mark.parametrize(("fmt", "binary"), FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_3d(tmp_path, fmt, binary, dtype):
    points = np.random.default_rng(1).normal(scale=50.0, size=(300, 3)).astype(dtype)
    path = tmp_path / f"points.{fmt}"
    write_points(path, points, binary=binary)
    shape = read_shape(path)
    assert shape.faces is None
    np.testing.assert_allclose(shape.points, points, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["ply", "xyz", "npy"])
def test_round_trip_2d_keeps_dimension(tmp_path, fmt):
    points = np.random.default_rng(2).uniform(size=(40, 2))
    write_points(tmp_path / f"digit.{fmt}", points)
    np.testing.assert_allclose(read_shape(tmp_path / f"digit.{fmt}").points, points, atol=1e-6)


def test_2d_points_get_z_zero_in_obj(tmp_path):
    points = np.random.default_rng(3).uniform(size=(10, 2))
    write_points(tmp_path / "digit.obj", points)
    read = read_shape(tmp_path / "digit.obj").points
    np.testing.assert_allclose(read[:, :2], points, atol=1e-6)
    assert (read[:, 2] == 0).all()


def test_existing_output_needs_force(tmp_path):
    path = tmp_path / "a.ply"
    write_points(path, np.zeros((3, 3)))
    with pytest.raises(OutputExistsError):
        write_points(path, np.ones((3, 3)))
    write_points(path, np.ones((3, 3)), force=True)
    assert (read_shape(path).points == 1).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ply"]  # no temporary file left behind


def test_unknown_output_format_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot write points as 'stl'"):
        write_points(tmp_path / "a.stl", np.zeros((3, 3)))


def test_fmt_overrides_suffix(tmp_path):
    points = np.arange(12.0).reshape(4, 3)
    write_points(tmp_path / "cloud.dat", points, fmt="ply", binary=False)
    assert (tmp_path / "cloud.dat").read_bytes().startswith(b"ply\nformat ascii")
    np.testing.assert_array_equal(read_shape(tmp_path / "cloud.dat", fmt="ply").points, points)
