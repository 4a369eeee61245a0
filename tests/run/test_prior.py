"""The l-GMM latent prior: EM recovers a mixture; prior.npz round-trips."""

from __future__ import annotations

import numpy as np

from pointset_cli.run.prior import LatentPrior, fit_gmm, fit_prior_by_class, load_prior, save_prior


def test_gmm_recovers_a_mixture_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    z = np.concatenate([c + rng.normal(0, 0.5, (300, 3)) for c in centres])
    prior = fit_gmm(z, 3, seed=0)
    found = prior.means[np.argsort(prior.means[:, 0] + prior.means[:, 1] * 0.1)]
    np.testing.assert_allclose(found, centres[[0, 2, 1]], atol=0.15)
    save_prior(LatentPrior(prior), tmp_path / "prior.npz")
    again = load_prior(tmp_path / "prior.npz").overall
    a, b = (p.sample(50, np.random.default_rng(1)) for p in (prior, again))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # stored as float32
    assert prior.log_prob(centres).min() > prior.log_prob(np.array([[40.0, 40.0, 40.0]]))[0]


def test_each_class_gets_its_own_mixture_and_it_round_trips(tmp_path):
    """Three classes around three centres (class 3 has one set, too few to fit): a class's
    mixture samples near its own centre, the overall one everywhere."""
    rng = np.random.default_rng(2)
    centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    z = np.concatenate([c + rng.normal(0, 0.5, (200, 2)) for c in centres] + [np.zeros((1, 2))])
    labels = np.repeat([0, 1, 2, 3], [200, 200, 200, 1])
    prior = fit_prior_by_class(z, labels, components=4, seed=0)
    save_prior(prior, tmp_path / "prior.npz")
    again = load_prior(tmp_path / "prior.npz")
    assert again.of_class(3) is None and again.of_class(4) is None and again.of_class(9) is None
    for c, centre in enumerate(centres):
        draws = again.of_class(c).sample(200, np.random.default_rng(c))
        assert np.abs(draws.mean(axis=0) - centre).max() < 0.2 and draws.std(axis=0).max() < 0.8
    assert again.overall.sample(600, np.random.default_rng(0)).std(axis=0).min() > 2.5  # the centres: 4.1, 2.8


def test_a_prior_naming_a_huge_class_number_loads_only_what_it_holds(tmp_path):
    """Class parts are keyed by their label: a file claiming class 999,999,999 costs one mixture."""
    rng = np.random.default_rng(3)
    mixture = fit_gmm(rng.normal(size=(40, 2)), 1, seed=0)
    save_prior(LatentPrior(mixture, {999_999_999: mixture}), tmp_path / "prior.npz")
    again = load_prior(tmp_path / "prior.npz")
    assert list(again.classes) == [999_999_999] and again.of_class(0) is None
    np.testing.assert_allclose(again.of_class(999_999_999).means, mixture.means, rtol=1e-6)


def test_sampled_size_codes_snap_to_sizes_the_training_data_has():
    """A size that never varied (every ModelNet shape has 1,024 points) still gets spread by the
    GMM: a sampled code must decode to exactly that size; with several sizes, to the nearest one."""
    from pointset_cli.run.generate import snap_size_codes

    fixed = np.zeros(1025, int)
    fixed[1024] = 845
    z = np.column_stack([np.ones(4), np.log1p([990.0, 1030.0, 1024.0, 3.0])]).astype(np.float32)
    snapped = snap_size_codes(z, fixed.tolist())
    assert np.round(np.expm1(snapped[:, -1])).tolist() == [1024] * 4
    np.testing.assert_array_equal(snapped[:, :-1], z[:, :-1])  # the shape code is left alone
    seen = np.zeros(300, int)
    seen[[19, 20, 40, 258]] = 1
    z = np.column_stack([np.zeros(6), np.log1p([0.0, 19.4, 29.0, 31.0, 250.0, 400.0])]).astype(np.float32)
    assert np.round(np.expm1(snap_size_codes(z, seen.tolist())[:, -1])).tolist() == [19, 19, 20, 40, 258, 258]
