"""Random corruption of real files never raises anything but InputError."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointset_cli.errors import InputError
from pointset_cli.io import read_shape

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _seed_files(shared_data):
    pcd = next((shared_data / "modelnet10_pcd1024" / "ModelNet10" / "pcd" / "chair" / "test").glob("*.pcd"))
    return {".ply": (shared_data / "meshes" / "ant.ply").read_bytes(), ".pcd": pcd.read_bytes()[:2000]}


def _read_or_input_error(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        shape = read_shape(path)
    except InputError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert np.isfinite(shape.points).all() and shape.points.shape[1] in (2, 3)


@SETTINGS
@given(
    suffix=st.sampled_from([".ply", ".pcd"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
)
def test_truncated_or_flipped_real_files(shared_data, tmp_path, suffix, cut, flips):
    data = bytearray(_seed_files(shared_data)[suffix])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    _read_or_input_error(tmp_path / f"fuzz{suffix}", bytes(data[: int(cut * len(data))]))


@SETTINGS
@given(
    suffix=st.sampled_from([".ply", ".pcd", ".obj", ".off", ".stl", ".xyz", ".pts", ".npy", ".npz", ".glb"]),
    data=st.binary(max_size=300),
)
def test_random_bytes(tmp_path, suffix, data):
    _read_or_input_error(tmp_path / f"random{suffix}", data)
