"""F-score, one-sided Chamfer and the nearest-training-shape baseline of set-to-set tasks, on real
MNIST digits and ModelNet chairs, against brute-force NumPy (full distance matrices)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from pointset_cli import metrics
from pointset_testing.setdata import mnist_sets, modelnet_chairs, pad_with_garbage


def ref_fscore(a: np.ndarray, b: np.ndarray, tau: float) -> tuple[float, float, float]:
    """(F, precision, recall) of output a [n, D] against target b [s, D], from the full matrix."""
    radius = tau * np.linalg.norm(b.max(0) - b.min(0))
    d = cdist(a.astype(np.float64), b.astype(np.float64))
    nearest = np.concatenate([d.min(1), d.min(0)])
    # A distance on the threshold would make float32 and float64 disagree: the case must avoid it.
    assert np.abs(nearest - radius).min() > 1e-5 * radius, "a point lies on the threshold: pick another tau"
    p, r = float(np.mean(d.min(1) < radius)), float(np.mean(d.min(0) < radius))
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def ref_one_sided(a: np.ndarray, b: np.ndarray) -> float:
    return float(cdist(a.astype(np.float64), b.astype(np.float64), "sqeuclidean").min(1).mean())


@pytest.fixture(scope="module")
def digits(shared_data) -> list[np.ndarray]:
    """24 MNIST digits (19 to 258 points each, on the pixel grid)."""
    return mnist_sets(shared_data, 24)


def completion_pairs(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[list, list]:
    """Outputs (each digit jittered, about 70% of its points) and targets (the digits): unequal sizes,
    F strictly between 0 and 1 at most thresholds."""
    outputs = []
    for s in digits:
        keep = rng.permutation(len(s))[: max(1, int(0.7 * len(s)))]
        outputs.append((s[keep] + rng.normal(0, 0.01, (len(keep), 2))).astype(np.float32))
    return outputs, digits


@pytest.mark.parametrize("tau", [0.005, 0.013, 0.037])
def test_fscore_matches_brute_force_and_ignores_garbage(digits, tau):
    rng = np.random.default_rng(0)
    outputs, targets = completion_pairs(digits[:10], rng)
    x, xm = pad_with_garbage(outputs, rng, n_max=300)
    y, ym = pad_with_garbage(targets, rng)  # a different padded width from x's
    got = metrics.paired_fscore(x, y, xm, ym, tau=tau, chunk=4)  # 10 pairs: the last chunk is padded
    want = np.array([ref_fscore(a, b, tau) for a, b in zip(outputs, targets)])
    for k, name in enumerate(("fscore", "precision", "recall")):
        assert got[name].dtype == np.float64 and got[name].shape == (10,)
        np.testing.assert_allclose(got[name], want[:, k], rtol=1e-12, atol=0)
    assert 0 < got["fscore"].mean() < 1  # the case is not trivial at these thresholds
    # Other garbage in the padding, or none at all, changes nothing.
    x2, _ = pad_with_garbage(outputs, np.random.default_rng(9), n_max=300)
    again = metrics.paired_fscore(x2, y, xm, ym, tau=tau)
    alone = [metrics.paired_fscore(a[None], b[None], tau=tau)["fscore"][0] for a, b in zip(outputs, targets)]
    np.testing.assert_array_equal(again["fscore"], got["fscore"])
    np.testing.assert_array_equal(alone, got["fscore"])


def test_fscore_on_chairs_threshold_scales_with_the_target():
    rng = np.random.default_rng(1)
    # Two independent samples of the same chairs, of different sizes: a completion-like pair.
    outputs = modelnet_chairs(6, 200, rng)
    targets = [t * 3.0 for t in modelnet_chairs(6, 300, rng)]  # a larger target: a larger threshold
    for tau in (0.01, 0.03, 0.1):
        got = metrics.paired_fscore(np.stack(outputs) * 3.0, np.stack(targets), tau=tau)
        want = np.array([ref_fscore(a * 3.0, b, tau) for a, b in zip(outputs, targets)])
        np.testing.assert_allclose(got["fscore"], want[:, 0], rtol=1e-12)
        np.testing.assert_allclose(got["precision"], want[:, 1], rtol=1e-12)


def test_fscore_identical_far_and_empty(digits):
    rng = np.random.default_rng(2)
    y, ym = pad_with_garbage(digits[:5], rng)
    same = metrics.paired_fscore(y.copy(), y, ym, ym)
    for name in ("fscore", "precision", "recall"):
        np.testing.assert_array_equal(same[name], 1.0)
    far = metrics.paired_fscore(np.where(ym[..., None], y + 5.0, y), y, ym, ym, tau=0.1)
    for name in ("fscore", "precision", "recall"):
        np.testing.assert_array_equal(far[name], 0.0)  # 0, not NaN
    # tau 0: no distance is strictly below 0, even for identical sets.
    np.testing.assert_array_equal(metrics.paired_fscore(y, y, ym, ym, tau=0.0)["fscore"], 0.0)
    # An output with no real point: no share at all, and its neighbours' search is ignored.
    empty = ym.copy()
    empty[1] = False
    got = metrics.paired_fscore(y, y, empty, ym)
    assert got["fscore"][1] == 0 and got["precision"][1] == 0 and got["recall"][1] == 0
    np.testing.assert_array_equal(np.delete(got["fscore"], 1), 1.0)
    with pytest.raises(ValueError, match="as many"):
        metrics.paired_fscore(y[:2], y, ym[:2], ym)


def test_fscore_permutation_invariant(digits):
    rng = np.random.default_rng(3)
    outputs, targets = completion_pairs(digits[:6], rng)
    x, xm = pad_with_garbage(outputs, rng)
    y, ym = pad_with_garbage(targets, rng)
    base = metrics.paired_fscore(x, y, xm, ym, tau=0.037)
    px, py = rng.permutation(x.shape[1]), rng.permutation(y.shape[1])  # padding moves among the points
    moved = metrics.paired_fscore(x[:, px], y[:, py], xm[:, px], ym[:, py], tau=0.037)
    for name in base:
        np.testing.assert_array_equal(moved[name], base[name])
    assert not np.array_equal(xm[:, px], xm)  # the permutation did mix real points and padding


def test_one_sided_chamfer_matches_brute_force_both_ways(digits):
    rng = np.random.default_rng(4)
    a_sets, b_sets = digits[:5], digits[5:9]
    a, am = pad_with_garbage(a_sets, rng)
    b, bm = pad_with_garbage(b_sets, rng, n_max=280)
    calls = []
    ab = metrics.one_sided_chamfer(a, b, am, bm, chunk=3, progress=lambda d, t: calls.append((d, t)))
    ba = metrics.one_sided_chamfer(b, a, bm, am, chunk=3)
    assert ab.shape == (5, 4) and ba.shape == (4, 5) and ab.dtype == np.float64
    for i, s in enumerate(a_sets):
        for j, t in enumerate(b_sets):
            np.testing.assert_allclose(ab[i, j], ref_one_sided(s, t), rtol=1e-5)
            np.testing.assert_allclose(ba[j, i], ref_one_sided(t, s), rtol=1e-5)
    assert not np.allclose(ab, ba.T, rtol=1e-2)  # not symmetric in general
    assert calls[0] == (0, 20) and calls[-1] == (20, 20) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    # Nothing to be near: inf (an empty candidate is never the nearest); nothing to average: 0.
    none_b, none_a = bm.copy(), am.copy()
    none_b[2], none_a[0] = False, False
    empty = metrics.one_sided_chamfer(a, b, none_a, none_b)
    assert np.isinf(empty[1:, 2]).all() and (empty[0] == 0).all()
    np.testing.assert_allclose(np.delete(empty[1:], 2, axis=1), np.delete(ab[1:], 2, axis=1), rtol=1e-6)
    within = metrics.one_sided_chamfer(a, a, am, am)
    np.testing.assert_array_equal(np.diag(within), 0.0)
    assert not np.allclose(within, within.T, rtol=1e-2)
    # A part inside its whole is at 0 from it; the whole is not at 0 from the part.
    chairs = modelnet_chairs(3, 128, rng)
    half = [c[c[:, 0] < np.median(c[:, 0])] for c in chairs]
    h, hm = pad_with_garbage(half, rng, n_max=128)
    part_to_whole = metrics.one_sided_chamfer(h, np.stack(chairs), hm)
    np.testing.assert_array_equal(np.diag(part_to_whole), 0.0)
    assert (np.diag(metrics.one_sided_chamfer(np.stack(chairs), h, None, hm)) > 0).all()
    for i, j in [(0, 1), (2, 0)]:
        np.testing.assert_allclose(part_to_whole[i, j], ref_one_sided(half[i], chairs[j]), rtol=1e-5)


def test_nearest_shapes_with_every_point_is_the_brute_force_argmin(digits, monkeypatch):
    rng = np.random.default_rng(5)
    inputs, _ = completion_pairs(digits[:8], rng)
    cands = digits[8:24]
    x, xm = pad_with_garbage(inputs, rng)
    c, cm = pad_with_garbage(cands, rng)
    d = np.array([[ref_one_sided(s, t) for t in cands] for s in inputs])
    second, first = np.sort(d, axis=1)[:, 1], d.min(1)
    assert (second > first * (1 + 1e-4)).all(), "near tie: pick other digits"
    got = metrics.nearest_shapes(x, c, xm, cm, points=300)
    np.testing.assert_array_equal(got, d.argmin(1))
    # Blocks of a few inputs at a time give the same answer, with one running count of pairs.
    monkeypatch.setattr(metrics, "NEAREST_BLOCK", 40)  # 2 inputs x 16 candidates per block
    calls = []
    np.testing.assert_array_equal(metrics.nearest_shapes(x, c, xm, cm, points=300,
                                                         progress=lambda n, t: calls.append((n, t))), got)
    assert calls[-1] == (128, 128) and [n for n, _ in calls] == sorted(n for n, _ in calls)
    assert {t for _, t in calls} == {128}


def test_nearest_shapes_finds_the_whole_of_a_partial_view():
    rng = np.random.default_rng(6)
    chairs = modelnet_chairs(20, 512, rng)
    # A partial view: the half of each chair on one side of a plane.
    half = [s[s[:, 0] < np.median(s[:, 0])] for s in chairs]
    order = rng.permutation(20)  # the candidates shuffled, so the answer is not arange
    cands = np.stack([chairs[k] for k in order])
    h, hm = pad_with_garbage(half, rng, n_max=300)
    want = np.argsort(order)
    np.testing.assert_array_equal(metrics.nearest_shapes(h, cands, hm, points=512), want)
    # Subsampled to 128 of the 256 input and 512 candidate points, the own shape still wins.
    np.testing.assert_array_equal(metrics.nearest_shapes(h, cands, hm, points=128), want)


def test_nearest_shapes_is_reproducible_for_a_seed(digits):
    rng = np.random.default_rng(7)
    x, xm = pad_with_garbage(digits[:12], rng)
    c, cm = pad_with_garbage(digits[12:], rng)
    runs = [metrics.nearest_shapes(x, c, xm, cm, points=4, seed=s) for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])  # 4 points of each: the seed does choose them
    assert runs[0].dtype == np.int64 and runs[0].shape == (12,)
    with pytest.raises(ValueError, match="candidate"):
        metrics.nearest_shapes(x, c[:0], xm, cm[:0])


def test_paired_emd_works_in_chunks_and_the_auction_is_within_its_bound():
    """The pairs go through in chunks (each an [N, S] cost matrix: a whole split at once ran out of
    memory); any chunk gives the same values, and the auction is within its error bound of exact."""
    rng = np.random.default_rng(3)
    chairs = np.stack(modelnet_chairs(7, 64, rng)).astype(np.float32)
    others = chairs[::-1].copy()
    exact = metrics.paired_emd(chairs, others, chunk=64)
    assert np.allclose(metrics.paired_emd(chairs, others, chunk=3), exact, atol=1e-6)
    auction = metrics.paired_emd(chairs, others, solver="auction-numba", chunk=2)
    assert np.all(np.abs(auction - exact) <= metrics.emd_error_bound("auction-numba", chairs, others) + 1e-6)
    assert exact[3] == pytest.approx(0.0, abs=1e-6) and exact.max() > 0.05  # the middle pair is one chair twice
