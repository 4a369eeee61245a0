"""Normalisation: each kind lands where it promises, and inverts back to source units."""

from __future__ import annotations

import numpy as np
import pytest

from pointset_cli.data import normalize


@pytest.fixture(scope="module")
def chairs(bundled_data):
    from pointset_cli.io import read_shape

    folder = bundled_data / "modelnet10_subset" / "chair" / "train"
    return [read_shape(p).points for p in sorted(folder.glob("*.pcd"))[:20]]


def test_sphere_fits_the_unit_ball_and_inverts(chairs):
    for pts in chairs:
        center, scale = normalize.set_stats(pts, "sphere")
        out = normalize.apply(pts, center, scale)
        np.testing.assert_allclose(out.mean(0), 0, atol=1e-9)
        assert np.linalg.norm(out, axis=1).max() == pytest.approx(1.0)
        np.testing.assert_allclose(normalize.invert(out, center, scale), pts, rtol=0, atol=1e-9 * scale)


def test_cube_fits_the_unit_cube(chairs):
    for pts in chairs:
        center, scale = normalize.set_stats(pts, "cube")
        out = normalize.apply(pts, center, scale)
        assert np.abs(out).max() == pytest.approx(1.0)
        np.testing.assert_allclose(out.min(0) + out.max(0), 0, atol=1e-9)


def test_global_has_zero_mean_unit_std_over_the_sets(chairs):
    center, scale = normalize.global_stats(chairs)
    allp = normalize.apply(np.concatenate(chairs), center, scale)
    np.testing.assert_allclose(allp.mean(0), 0, atol=1e-9)
    assert allp.std() == pytest.approx(1.0)


def test_none_is_identity_and_degenerate_sets_keep_scale_one(chairs):
    center, scale = normalize.set_stats(chairs[0], "none")
    assert scale == 1.0 and not center.any()
    one = np.array([[3.0, 4.0, 5.0]])
    center, scale = normalize.set_stats(one, "sphere")
    assert scale == 1.0
    np.testing.assert_array_equal(normalize.apply(one, center, scale), 0)
