"""The l-GMM latent prior: EM recovers a mixture; prior.npz round-trips."""

from __future__ import annotations

import numpy as np

from pointset_cli.run.prior import fit_gmm, load_prior, save_prior


def test_gmm_recovers_a_mixture_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    z = np.concatenate([c + rng.normal(0, 0.5, (300, 3)) for c in centres])
    prior = fit_gmm(z, 3, seed=0)
    found = prior.means[np.argsort(prior.means[:, 0] + prior.means[:, 1] * 0.1)]
    np.testing.assert_allclose(found, centres[[0, 2, 1]], atol=0.15)
    save_prior(prior, tmp_path / "prior.npz")
    again = load_prior(tmp_path / "prior.npz")
    a, b = (p.sample(50, np.random.default_rng(1)) for p in (prior, again))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # stored as float32
    assert prior.log_prob(centres).min() > prior.log_prob(np.array([[40.0, 40.0, 40.0]]))[0]
