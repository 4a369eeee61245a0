"""The numba auction EMD against scipy's exact optimum: random instances with ties, real shapes, API."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

pytest.importorskip("numba")

from pointset_cli import metrics  # noqa: E402
from pointset_cli.distances import auction_kernel as emd  # noqa: E402
from pointset_testing.setdata import modelnet_chairs, pad_with_garbage  # noqa: E402


def random_instance(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of equal-size sets; every third has integer-grid points (tied costs) and duplicates."""
    n = int(rng.integers(5, 201))
    d = int(rng.integers(2, 4))
    if k % 3 == 0:
        x, y = rng.integers(0, 4, (n, d)).astype(float), rng.integers(0, 4, (n, d)).astype(float)
    else:
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * rng.uniform(0.1, 10)
        x[: n // 4] = x[0]  # duplicate points
    return x, y


def test_auction_is_within_bound_of_scipy_on_100_instances_with_ties():
    rng = np.random.default_rng(0)
    exact_hits = 0
    for k in range(100):
        x, y = random_instance(rng, k)
        cost = emd.euclidean_cost(x, y)
        np.testing.assert_allclose(cost, cdist(x, y), rtol=1e-12, atol=1e-12)
        eps = 1e-7 * cost.max()
        cols = emd.auction(cost, eps)
        n = len(cost)
        assert np.array_equal(np.sort(cols), np.arange(n)), "not a permutation"
        got, opt = cost[np.arange(n), cols].sum(), cost[linear_sum_assignment(cost)].sum()
        assert opt - 1e-9 * opt <= got <= opt + n * eps + 1e-9 * opt
        exact_hits += np.isclose(got, opt, rtol=1e-12)
    assert exact_hits >= 90  # the bound is loose: nearly all optima are found exactly


def test_pairwise_emd_on_modelnet_chairs_within_reported_bound_and_deterministic():
    chairs = np.stack(modelnet_chairs(6, 256, np.random.default_rng(1)))
    a, b = chairs[:3], chairs[3:]
    got = metrics.pairwise_emd(a, b, solver="auction-numba")
    assert np.array_equal(got, metrics.pairwise_emd(a, b))  # "auto" is the numba auction
    assert np.array_equal(got, metrics.pairwise_emd(a, b, solver="auction-numba", chunk=1))
    bound = metrics.emd_error_bound("auction-numba", a, b)
    assert 0 < bound < 1e-6  # unit-ball shapes: diagonal <= 2*sqrt(3), bound 1e-7 of it
    for i in range(3):
        for j in range(3):
            c = cdist(a[i], b[j])
            opt = c[linear_sum_assignment(c)].mean()
            assert opt - 1e-6 * opt <= got[i, j] <= opt + bound + 1e-6 * opt  # float32 output
    sym = metrics.pairwise_emd(chairs, chairs)
    assert np.all(np.diag(sym) == 0) and np.array_equal(sym, sym.T)
    np.testing.assert_allclose(sym[:3, 3:], got, rtol=1e-6)


def test_padding_is_ignored_and_generation_metrics_report_the_bound():
    rng = np.random.default_rng(2)
    sets = [rng.normal(size=(12, 3)).astype(np.float32) for _ in range(4)]
    p, m = pad_with_garbage(sets, rng, n_max=15)
    got = metrics.pairwise_emd(p[:2], p[2:], m[:2], m[2:])
    ref = metrics.pairwise_emd(np.stack(sets[:2]), np.stack(sets[2:]), solver="scipy")
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    out = metrics.generation_metrics(p[:2], p[2:], sample_mask=m[:2], ref_mask=m[2:], metrics=("mmd_emd",))
    assert out["emd_solver"] == "auction-numba"
    assert out["emd_error_bound"] == metrics.emd_error_bound("auction-numba", np.concatenate(sets))
    exact = metrics.generation_metrics(
        p[:2], p[2:], sample_mask=m[:2], ref_mask=m[2:], metrics=("mmd_emd",), emd_solver="scipy"
    )
    assert exact["emd_error_bound"] == 0.0
    assert abs(out["mmd_emd"] - exact["mmd_emd"]) <= out["emd_error_bound"] + 1e-6 * exact["mmd_emd"]


def test_assign_solver_matches_scipy_on_masked_rectangular_costs():
    import jax.numpy as jnp

    from pointset_cli.distances.assignment import assign

    rng = np.random.default_rng(3)
    cost = rng.integers(0, 5, (6, 9, 7)).astype(np.float32)  # many ties
    rows, cols = rng.random((6, 9)) < 0.8, rng.random((6, 7)) < 0.8
    got = np.asarray(assign(jnp.asarray(cost), jnp.asarray(rows), jnp.asarray(cols), solver="auction-numba"))
    ref = np.asarray(assign(jnp.asarray(cost), jnp.asarray(rows), jnp.asarray(cols), solver="scipy"))
    for b in range(6):
        assert (got[b] >= 0).sum() == min(rows[b].sum(), cols[b].sum())
        matched = got[b][got[b] >= 0]
        assert len(set(matched)) == len(matched) and cols[b][matched].all() and rows[b][got[b] >= 0].all()
        totals = [cost[b][np.flatnonzero(a >= 0), a[a >= 0]].sum() for a in (got[b], ref[b])]
        assert totals[0] == pytest.approx(totals[1], abs=1e-5)
