"""Sampling: uniform on the surface, farthest-point spread, exact counts, seeded reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from pointset_cli.data import sampling
from pointset_cli.errors import UsageError


@pytest.fixture(scope="module")
def teapot(shared_data):
    from pointset_cli.io import read_shape

    shape = read_shape(shared_data / "meshes" / "teapot.obj")
    assert shape.faces is not None
    return shape


def on_surface(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, tol: float) -> np.ndarray:
    """[n] bool: the point lies (within tol) on some triangle, by plane distance and barycentrics."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))  # [F, 3] each
    e1, e2 = b - a, c - a
    normal = np.cross(e1, e2)
    nn = np.linalg.norm(normal, axis=1)
    keep = nn > 0
    a, e1, e2, normal, nn = a[keep], e1[keep], e2[keep], normal[keep], nn[keep]
    d = points[:, None, :] - a[None]  # [n, F, 3]
    plane = np.abs(np.einsum("nfk,fk->nf", d, normal)) / nn
    # barycentric coordinates of the projection
    d00, d01, d11 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    d20, d21 = np.einsum("nfk,fk->nf", d, e1), np.einsum("nfk,fk->nf", d, e2)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    eps = 1e-6
    inside = (v >= -eps) & (w >= -eps) & (v + w <= 1 + eps) & (plane < tol)
    return inside.any(axis=1)


def test_surface_samples_lie_on_the_mesh(teapot):
    pts = sampling.sample_surface(teapot.points, teapot.faces, 2048, np.random.default_rng(0))
    assert pts.shape == (2048, 3)
    extent = np.ptp(teapot.points, axis=0).max()
    assert on_surface(pts[:100], teapot.points, teapot.faces, 1e-9 * extent).all()
    off = pts[:100] + 0.05 * extent  # shifted copies are (almost all) off the surface
    assert on_surface(off, teapot.points, teapot.faces, 1e-9 * extent).mean() < 0.1


def test_surface_sampling_is_area_weighted():
    # Two triangles in the plane z=0, the second with 9x the area of the first.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 3, 0]], float)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    pts = sampling.sample_surface(vertices, faces, 20000, np.random.default_rng(1))
    share_big = np.mean(pts[:, 0] >= 10)
    assert abs(share_big - 0.9) < 0.01
    small = pts[pts[:, 0] < 10]
    assert (small[:, 0] >= 0).all() and (small[:, 1] >= 0).all() and (small[:, :2].sum(1) <= 1 + 1e-12).all()


def test_seeded_sampling_is_reproducible_and_seeds_differ(teapot):
    for sampler in ("surface", "fps"):
        a = sampling.sample_mesh(teapot.points, teapot.faces, 256, sampler, np.random.default_rng(5))
        b = sampling.sample_mesh(teapot.points, teapot.faces, 256, sampler, np.random.default_rng(5))
        c = sampling.sample_mesh(teapot.points, teapot.faces, 256, sampler, np.random.default_rng(6))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)


def test_fps_spreads_points_more_evenly_than_random(teapot):
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(0)
    dense = sampling.sample_surface(teapot.points, teapot.faces, 4000, rng)
    idx = sampling.farthest_point_indices(dense, 200, rng)
    assert len(np.unique(idx)) == 200
    rand = dense[rng.choice(4000, 200, replace=False)]
    assert pdist(dense[idx]).min() > 2 * pdist(rand).min()


def test_resize_points_gives_exact_counts_from_the_set():
    pts = np.random.default_rng(0).normal(size=(100, 3))
    rng = np.random.default_rng(1)
    down = sampling.resize_points(pts, 40, rng)
    assert down.shape == (40, 3) and len(np.unique(down, axis=0)) == 40
    assert all((pts == p).all(1).any() for p in down)
    up = sampling.resize_points(pts, 130, rng)
    assert up.shape == (130, 3)
    np.testing.assert_array_equal(up[:100], pts)  # every original point is kept
    assert all((pts == p).all(1).any() for p in up[100:])
    assert sampling.resize_points(pts, 100, rng) is pts


def test_unknown_sampler_is_a_usage_error():
    with pytest.raises(UsageError, match="choose one of"):
        sampling.require_sampler("uniform")


@pytest.mark.skipif(not sampling.has_open3d(), reason="open3d is not installed (optional extra)")
def test_poisson_gives_n_points_on_the_surface(teapot):
    pts = sampling.sample_mesh(teapot.points, teapot.faces, 500, "poisson", np.random.default_rng(0))
    assert pts.shape == (500, 3)
    extent = np.ptp(teapot.points, axis=0).max()
    assert on_surface(pts[:50], teapot.points, teapot.faces, 1e-6 * extent).all()
