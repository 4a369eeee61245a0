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


def test_nearest_label_accuracy_asks_each_samples_nearest_reference_for_its_label():
    d_sr = np.array([[0.1, 0.5, 0.9],   # nearest ref 0 (label 3): sample asked for 3, counts
                     [0.4, 0.4, 0.7],   # a tie goes to ref 0 (label 3), not ref 1 (label 5): does not count
                     [0.8, 0.3, 0.2]])  # nearest ref 2 (label 5): counts
    assert metrics.nearest_label_accuracy(d_sr, np.array([3, 5, 5]), np.array([3, 5, 5])) == pytest.approx(2 / 3)
    # Through generation_metrics, on chairs labelled by which half of the collection they are in.
    chairs = np.stack(modelnet_chairs(12, 64, np.random.default_rng(0)))
    labels = np.repeat([0, 1], 6)
    out = metrics.generation_metrics(chairs + 0.002, chairs, metrics=("mmd_cd",), labels=(labels, labels))
    assert out["label_nn_cd"] == 1.0
    swapped = metrics.generation_metrics(chairs + 0.002, chairs, metrics=("mmd_cd",), labels=(1 - labels, labels))
    assert swapped["label_nn_cd"] == 0.0
    assert "label_nn_cd" not in metrics.generation_metrics(chairs, chairs, metrics=("jsd",), labels=(labels, labels))


def test_one_nna_breaks_a_tie_toward_the_lower_index_samples_first():
    # Reference r0 is as near sample s0 as reference r1 (distance 1): the lower joint index, s0,
    # is its neighbour, so r0 counts as misclassified (with the higher index it would count right).
    d_ss, d_sr, d_rr = np.zeros((1, 1)), np.array([[1.0, 2.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    assert metrics.one_nna(d_ss, d_sr, d_rr) == pytest.approx(1 / 3)  # s0 -> r0 wrong, r0 -> s0 wrong, r1 -> r0 right


def test_jsd_reports_points_outside_its_grid_and_the_pointflow_protocol_fits_the_references():
    """Sphere-normalised chairs (radius 1) lie half outside the grid's ball of radius 0.5."""
    chairs = np.stack(modelnet_chairs(10, 512, np.random.default_rng(6)))
    assert 0.4 < metrics.outside_grid(chairs) < 0.6
    raw = metrics.generation_metrics(chairs[:5], chairs[5:], metrics=("jsd",))
    assert raw["jsd_protocol"] == "raw" and raw["jsd_scale"] == 1.0 and raw["jsd_resolution"] == 28
    assert raw["jsd_outside_refs"] > 0.4 and raw["jsd_outside_samples"] > 0.3
    fit = metrics.generation_metrics(chairs[:5], chairs[5:], metrics=("jsd",), jsd_protocol="pointflow")
    assert fit["jsd_outside_refs"] == 0.0 and fit["jsd_outside_samples"] < 0.01
    assert 0.45 < fit["jsd_scale"] < 0.55  # radius 1 -> 0.5
    shift, factor = metrics.grid_fit(chairs[5:])
    assert fit["jsd"] == pytest.approx(metrics.jsd((chairs[:5] - shift) * factor, (chairs[5:] - shift) * factor))
    # MNIST-like sets in [0, 1]^2: the fit moves them to the origin too.
    square = np.random.default_rng(7).uniform(0, 1, size=(4, 50, 2))
    shift, factor = metrics.grid_fit(square)
    assert np.allclose(shift, 0.5, atol=0.05) and metrics.outside_grid((square - shift) * factor) == 0.0
    with pytest.raises(ValueError, match="protocol"):
        metrics.generation_metrics(chairs[:2], chairs[2:4], metrics=("jsd",), jsd_protocol="pointfl0w")


def test_progress_names_each_pass_and_never_counts_back():
    rng = np.random.default_rng(8)
    s, r = rng.normal(size=(2, 5, 16, 3)).astype(np.float32)
    calls = []
    metrics.generation_metrics(s, r, metrics=("mmd_cd", "nna_cd", "mmd_emd"), emd_solver="scipy", emd_search="all",
                               progress=lambda phase, done, total: calls.append((phase, done, total)))
    want = metrics.distance_pairs(("mmd_cd", "nna_cd", "mmd_emd"), 5, 5)
    assert [c[0] for c in calls] == sorted((c[0] for c in calls), key=["CD pairs", "EMD pairs"].index)
    for phase, kind in (("CD pairs", "cd"), ("EMD pairs", "emd")):
        counts = [done for p, done, total in calls if p == phase]
        assert counts[0] == 0 and counts[-1] == want[kind] and counts == sorted(counts)
        assert {total for p, _, total in calls if p == phase} == {want[kind]}
    # Searching by bounds counts a pair as done once it is ruled out or solved.
    calls.clear()
    metrics.generation_metrics(s, r, metrics=("mmd_emd",), emd_solver="scipy",
                               progress=lambda phase, done, total: calls.append((phase, done, total)))
    counts = [done for p, done, total in calls if p == "EMD pairs"]
    assert counts == sorted(counts) and counts[-1] == 25 and {c[2] for c in calls} == {25}


@pytest.mark.parametrize("solver", ["auction-numba", "scipy"])
def test_emd_metrics_by_bounds_equal_all_pairs_exactly_with_ties(solver):
    """The search solves only the pairs lower bounds cannot rule out; MMD, COV and 1-NNA are still
    those of every pair, to the last bit, also where a sample copies a reference or another sample."""
    rng = np.random.default_rng(11)
    chairs = modelnet_chairs(14, 128, rng)
    samples, refs = chairs[:7], chairs[7:]
    samples[3] = refs[2].copy()  # a sample at distance 0 from a reference
    samples[5] = samples[1].copy()  # two equal samples
    samples, s_mask = pad_with_garbage(samples, rng, 140)
    refs, r_mask = pad_with_garbage(refs, rng, 140)
    names = ("mmd_emd", "cov_emd", "nna_emd")
    kw = dict(sample_mask=s_mask, ref_mask=r_mask, metrics=names, emd_solver=solver)
    everything = metrics.generation_metrics(samples, refs, emd_search="all", **kw)
    pruned = metrics.generation_metrics(samples, refs, emd_search="bounds", **kw)
    for name in names:
        assert pruned[name] == everything[name], name
    assert pruned["emd_pairs"] == 7 * 7 + 2 * 21 and 0 < pruned["emd_pairs_solved"] < pruned["emd_pairs"]
    assert "emd_pairs_solved" not in everything
