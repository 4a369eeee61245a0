"""MMD, COV, 1-NNA, JSD and the pairwise matrices on hand-built collections with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from pointset_cli import metrics
from pointset_testing.setdata import modelnet_chairs, pad_with_garbage


def ref_cd(a, b):
    d = cdist(a, b, "sqeuclidean")
    return d.min(1).mean() + d.min(0).mean()


def test_pairwise_cd_and_emd_match_brute_force():
    rng = np.random.default_rng(0)
    chairs = modelnet_chairs(5, 48, rng)
    a, b = np.stack(chairs[:3]), np.stack(chairs[3:])
    cd = metrics.pairwise_cd(a, b, chunk=4)
    emd = metrics.pairwise_emd(a, b, chunk=4)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(cd[i, j], ref_cd(a[i], b[j]), rtol=1e-5)
            c = cdist(a[i], b[j])
            np.testing.assert_allclose(emd[i, j], c[linear_sum_assignment(c)].mean(), rtol=1e-5)
    sym = metrics.pairwise_cd(a, a, chunk=2)
    assert np.all(np.diag(sym) == 0) and np.allclose(sym, sym.T)
    np.testing.assert_allclose(sym[0, 2], ref_cd(a[0], a[2]), rtol=1e-5)


def test_pairwise_cd_ignores_garbage_padding_and_emd_checks_sizes():
    rng = np.random.default_rng(1)
    sets = [rng.normal(size=(n, 2)).astype(np.float32) for n in (4, 9, 6)]
    p, m = pad_with_garbage(sets, rng)
    got = metrics.pairwise_cd(p, p[:1], m, m[:1], chunk=2)
    np.testing.assert_allclose(got[:, 0], [ref_cd(s, sets[0]) for s in sets], rtol=1e-5)
    with pytest.raises(ValueError, match="equal size"):
        metrics.pairwise_emd(p, p, m, m)


@pytest.mark.slow
def test_known_answers_on_hand_built_collections():
    rng = np.random.default_rng(2)
    refs = rng.normal(size=(10, 16, 3)).astype(np.float32) * 0.1
    same = metrics.generation_metrics(refs.copy(), refs, metrics=("mmd_cd", "cov_cd", "mmd_emd", "cov_emd"))
    assert same["mmd_cd"] == 0 and same["mmd_emd"] < 1e-6 and same["cov_cd"] == 1 and same["cov_emd"] == 1
    far = metrics.generation_metrics(refs + 5.0, refs, metrics=("nna_cd", "nna_emd"))
    assert far["nna_cd"] == 1 and far["nna_emd"] == 1
    draws = rng.normal(size=(200, 16, 3)).astype(np.float32) * 0.1
    mixed = metrics.generation_metrics(draws[:100], draws[100:], metrics=("nna_cd",))
    assert 0.35 < mixed["nna_cd"] < 0.65


def test_mmd_cov_nna_on_a_small_matrix():
    d_sr = np.array([[1.0, 5.0, 9.0], [2.0, 4.0, 8.0]])  # 2 samples, 3 refs
    assert metrics.mmd(d_sr) == pytest.approx((1 + 4 + 8) / 3)
    assert metrics.coverage(d_sr) == pytest.approx(1 / 3)  # both samples pick ref 0
    d_ss = np.array([[0.0, 3.0], [3.0, 0.0]])
    d_rr = np.array([[0, 1.5, 7], [1.5, 0, 7], [7, 7, 0]])
    # s0 -> r0 (1) wrong, s1 -> r0 (2) wrong, r0 -> s0 (1) wrong, r1 -> r0 (1.5) right, r2 -> r0/r1 tie (7) right
    assert metrics.one_nna(d_ss, d_sr, d_rr) == pytest.approx(2 / 5)
    tie = metrics.one_nna(np.zeros((1, 1)), np.array([[1.0]]), np.zeros((1, 1)))
    assert tie == 0.0


def test_jsd_and_cardinality_accuracy():
    rng = np.random.default_rng(3)
    a = rng.uniform(-0.3, 0.3, size=(20, 64, 3)).astype(np.float32)
    assert metrics.jsd(a, a) == pytest.approx(0.0, abs=1e-12)
    far = metrics.jsd(a * 0.2 + 0.2, a * 0.2 - 0.2)
    assert far == pytest.approx(1.0, abs=1e-9)
    big = rng.uniform(-0.3, 0.3, size=(2, 20, 4000, 3))
    assert 0 < metrics.jsd(big[0], big[1]) < 0.05  # sampling noise only
    assert metrics.cardinality_accuracy([3, 4, 5, 6], [3, 4, 0, 6]) == 0.75


def test_reconstruction_metrics_emd_only_on_equal_sizes():
    rng = np.random.default_rng(4)
    sets = [rng.normal(size=(n, 2)).astype(np.float32) for n in (5, 5, 7, 5)]
    x, xm = pad_with_garbage(sets[:2], rng, n_max=7)
    y, ym = pad_with_garbage(sets[2:], rng, n_max=7)
    out = metrics.reconstruction_metrics(x, y, xm, ym, per_pair=True)
    assert out["emd_pairs"] == 1 and np.isnan(out["emd_per_pair"][0])
    c = cdist(sets[1], sets[3])
    assert out["emd"] == pytest.approx(c[linear_sum_assignment(c)].mean(), rel=1e-5)
    assert out["cd"] == pytest.approx((ref_cd(sets[0], sets[2]) + ref_cd(sets[1], sets[3])) / 2, rel=1e-5)


def test_retrieval_accuracy_counts_reconstructions_strictly_nearest_their_own_input():
    d_ri = np.array([[0.1, 0.5, 0.9],   # nearest its own input: counts
                     [0.2, 0.2, 0.7],   # a tie with input 0: does not count
                     [0.1, 0.3, 0.4]])  # nearer input 0: does not count
    assert metrics.retrieval_accuracy(d_ri) == pytest.approx(1 / 3)
    # Reconstructions that ignore their input (all the same set) are near one input at most.
    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(6, 30, 2)).astype(np.float32)
    same = np.repeat(inputs[:1] * 0.9, 6, axis=0)
    assert metrics.retrieval_accuracy(metrics.pairwise_cd(same, inputs)) == pytest.approx(1 / 6)
    assert metrics.retrieval_accuracy(metrics.pairwise_cd(inputs + 0.01, inputs)) == 1.0
    with pytest.raises(ValueError, match="square"):
        metrics.retrieval_accuracy(np.zeros((2, 3)))
