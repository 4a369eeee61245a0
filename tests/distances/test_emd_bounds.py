"""EMD lower bounds and the exact nearest-set search built on them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from pointset_cli.distances import emd_bounds
from pointset_cli.distances.nearest_sets import exact_tier, lower_tier, nearest_by_bounds
from pointset_testing.setdata import modelnet_chairs


def exact_emd(a: np.ndarray, b: np.ndarray) -> float:
    cost = cdist(a.astype(np.float64), b.astype(np.float64))
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def test_every_bound_is_below_the_exact_emd_on_real_chairs_and_random_sets():
    rng = np.random.default_rng(0)
    sets = modelnet_chairs(8, 96, rng) + [rng.normal(size=(96, 3)).astype(np.float32) * s for s in (0.1, 1.0)]
    real = np.stack(sets).astype(np.float64)
    cheap = emd_bounds.projection_bounds(real)
    i, j = np.triu_indices(len(sets), 1)
    dual = emd_bounds.dual_bounds(real, i, j)
    exact = np.array([exact_emd(sets[a], sets[b]) for a, b in zip(i, j, strict=True)])
    assert (cheap[i, j] <= exact + 1e-9).all() and (dual <= exact * (1 + 1e-6)).all()
    assert np.allclose(cheap, cheap.T) and (np.diag(cheap) == 0).all()
    # The dual is the tighter of the two on similar shapes: what lets the search skip solves.
    chairs = (i < 8) & (j < 8)
    assert np.median(dual[chairs] / exact[chairs]) > np.median(cheap[i, j][chairs] / exact[chairs])
    assert emd_bounds.dual_bounds(real, np.array([0]), np.array([0]))[0] == 0.0  # a set against itself


def test_the_search_answers_every_query_as_the_full_matrix_does_with_ties_and_solves_fewer():
    rng = np.random.default_rng(1)
    pts = [rng.normal(size=(40, 2)) for _ in range(12)]
    pts[5] = pts[2].copy()  # exact ties at distance 0 and equal distances to everything else
    pts[9] = pts[2].copy()
    real = np.stack(pts)
    m = len(pts)
    full = np.array([[exact_emd(a, b) for b in pts] for a in pts], np.float32)
    solved = []

    def solve(i, j):
        solved.append(len(i))
        assert (i < j).all()
        return full[i, j]

    def bracket(i, j):  # a loose interval around the truth, as a coarse solver would give
        return full[i, j] * 0.97, full[i, j] * 1.03

    everyone = np.ones(m, bool)
    queries = ([(q, everyone, "nearest") for q in range(m)] + [(q, np.arange(m) >= 6, "nearest") for q in range(6)]
               + [(q, np.arange(m) < 6, "distance") for q in range(6, m)])
    tiers = [lower_tier(lambda i, j: emd_bounds.dual_bounds(real, i, j)), bracket, exact_tier(solve)]
    dist, counts = nearest_by_bounds(emd_bounds.projection_bounds(real), queries, tiers, atol=1e-9)
    expected = full.astype(np.float64)
    np.fill_diagonal(expected, np.inf)
    got = dist.astype(np.float64)
    np.fill_diagonal(got, np.inf)
    assert np.array_equal(got.argmin(1), expected.argmin(1))
    assert got[2].argmin() == 5 and got[5].argmin() == 2 and got[9].argmin() == 2  # lowest index of the tie
    later, early = np.arange(m) >= 6, np.arange(m) < 6
    assert np.array_equal(np.where(later, got[:6], np.inf).argmin(1), np.where(later, expected[:6], np.inf).argmin(1))
    # Queries that want the distance get it exactly.
    assert np.array_equal(np.where(early, got[6:], np.inf).min(1), np.where(early, expected[6:], np.inf).min(1))
    assert counts.pairs == m * (m - 1) // 2 and counts.per_tier[-1] == sum(solved) < counts.pairs
    exact = np.isclose(dist, full, rtol=0, atol=0)
    assert exact.sum() >= 2 * sum(solved)  # the solved pairs hold their exact values


def test_queries_for_the_group_get_the_group_of_the_true_nearest_with_ties_across_groups():
    rng = np.random.default_rng(2)
    pts = [rng.normal(size=(40, 2)) * rng.uniform(0.5, 1.5) for _ in range(16)]
    pts[9] = pts[2].copy()  # 2 (group 0) and 9 (group 1) tie at distance 0 for 5, a copy of both
    pts[5] = pts[2].copy()
    pts[12] = pts[3] + 1e-3  # a near tie across groups
    real = np.stack(pts)
    m = len(pts)
    groups = (np.arange(m) >= 8).astype(np.int64)
    full = np.array([[exact_emd(a, b) for b in pts] for a in pts], np.float32)
    expected = full.astype(np.float64)
    np.fill_diagonal(expected, np.inf)
    solved = {}
    for wants in ("nearest", "group"):
        solved[wants] = []

        def solve(i, j, log=solved[wants]):
            log.extend(zip(i.tolist(), j.tolist()))
            return full[i, j]

        tiers = [lower_tier(lambda i, j: emd_bounds.dual_bounds(real, i, j)),
                 lambda i, j: (full[i, j] * 0.97, full[i, j] * 1.03), exact_tier(solve)]
        dist, _ = nearest_by_bounds(emd_bounds.projection_bounds(real), [(q, np.ones(m, bool), wants) for q in range(m)],
                                    tiers, atol=1e-9, groups=groups)
        got = dist.astype(np.float64)
        np.fill_diagonal(got, np.inf)
        assert np.array_equal(groups[got.argmin(1)], groups[expected.argmin(1)])
        assert got[5].argmin() == 2  # the tie across groups goes to the lowest index, as np.argmin's
    assert len(solved["group"]) <= len(solved["nearest"])
    with pytest.raises(ValueError, match="groups"):
        nearest_by_bounds(emd_bounds.projection_bounds(real), [(0, np.ones(m, bool), "group")], tiers)


def test_bounds_refuse_sets_of_different_sizes():
    mask = np.ones((2, 5), bool)
    mask[0, 4] = False
    with pytest.raises(ValueError, match="equal size"):
        emd_bounds.real_points(np.zeros((2, 5, 3)), mask)
