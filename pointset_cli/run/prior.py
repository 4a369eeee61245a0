"""Latent priors for autoencoders: the l-GMM of Achlioptas et al. (2018), fitted by EM in numpy.

An autoencoder generates by drawing a latent z [n, K] from a Gaussian mixture fitted on the
training set's embeddings, then decoding it. The mixture is stored in the run folder as a plain
.npz (weights, means, Cholesky factors): no pickle.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.fsutil import atomic_path

_LOG_2PI = float(np.log(2 * np.pi))


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    weights: np.ndarray  # [C] mixing proportions, sum 1
    means: np.ndarray  # [C, K]
    chol: np.ndarray  # [C, K, K] lower Cholesky factors of the covariances

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """Log density of each row of z [n, K] -> [n]."""
        return _logsumexp(_component_log_prob(z, self.means, self.chol) + np.log(self.weights), axis=1)

    def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        """n latents [n, K]; `temperature` scales each component's spread (1 = the fitted one)."""
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        eps = rng.standard_normal((n, self.means.shape[1]))
        z = self.means[comp] + temperature * np.einsum("nij,nj->ni", self.chol[comp], eps)
        return z.astype(np.float32)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _component_log_prob(z: np.ndarray, means: np.ndarray, chol: np.ndarray, check_finite: bool = True) -> np.ndarray:
    """log N(z_i | mu_c, L_c L_c^T) for every row and component -> [n, C]. check_finite: scipy's
    check of z and the factors (a ValueError on NaN or inf); EM skips it, its inputs are checked."""
    from scipy.linalg import solve_triangular  # here: fitting needs it, sampling does not (0.1 s to import)

    out = np.empty((len(z), len(means)))
    for c in range(len(means)):
        # Solve L y = (z - mu)^T; the Mahalanobis term is |y|^2.
        y = solve_triangular(chol[c], (z - means[c]).T, lower=True, check_finite=check_finite)
        logdet = 2.0 * np.log(np.diag(chol[c])).sum()
        out[:, c] = -0.5 * (z.shape[1] * _LOG_2PI + logdet + (y**2).sum(axis=0))
    return out


def fit_gmm(z: np.ndarray, n_components: int, seed: int = 0, iters: int = 60, reg: float = 1e-4, tol: float = 1e-4) -> GaussianMixture:
    """Full-covariance Gaussian mixture on z [n, K] by EM (k-means++ start).

    `reg` (times the mean feature variance) is added to every covariance's diagonal, so a
    component never collapses onto a few points. Fewer rows than components -> fewer components.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2 or not np.isfinite(z).all():
        raise InputError(f"cannot fit a prior on {z.shape} embeddings (need >= 2 finite rows)")
    n, k = z.shape
    c = max(1, min(n_components, n // 2))
    rng = np.random.default_rng(seed)
    eye = np.eye(k) * reg * max(float(z.var(axis=0).mean()), 1e-12)
    means = _kmeanspp(z, c, rng)
    resp = np.eye(c)[((z[:, None] - means[None]) ** 2).sum(-1).argmin(1)]  # [n, C] hard start
    prev = -np.inf
    for _ in range(iters):
        weights, means, chol = _m_step(z, resp, eye)
        # fit_gmm checked z and a Cholesky factor is finite; scipy's check took half the fit's time.
        logp = _component_log_prob(z, means, chol, check_finite=False) + np.log(weights)  # [n, C]
        total = _logsumexp(logp, axis=1)
        resp = np.exp(logp - total[:, None])
        ll = float(total.mean())
        if ll - prev < tol * abs(ll):
            break
        prev = ll
    return GaussianMixture(weights, means, chol)


def _kmeanspp(z: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    centres = [z[rng.integers(len(z))]]
    for _ in range(1, c):
        d2 = np.min([((z - m) ** 2).sum(1) for m in centres], axis=0)
        centres.append(z[rng.choice(len(z), p=d2 / d2.sum())] if d2.sum() > 0 else z[rng.integers(len(z))])
    return np.stack(centres)


def _m_step(z: np.ndarray, resp: np.ndarray, eye: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nk = resp.sum(0) + 1e-10  # [C]
    means = resp.T @ z / nk[:, None]
    chol = np.empty((len(nk), z.shape[1], z.shape[1]))
    for c in range(len(nk)):
        d = z - means[c]
        cov = (resp[:, c, None] * d).T @ d / nk[c] + eye
        chol[c] = np.linalg.cholesky(cov)
    return nk / nk.sum(), means, chol


CLASS_COMPONENTS = 2  # mixture components per class in a prior's per-class part
_PARTS = ("weights", "means", "chol")
_CLASS_KEY = re.compile(r"class(\d+)_weights")


@dataclasses.dataclass(frozen=True)
class LatentPrior:
    """The l-GMM of all training embeddings, and one small mixture per class label (absent where a
    class had too few sets, or for priors written before per-class parts existed)."""

    overall: GaussianMixture
    classes: Mapping[int, GaussianMixture] = dataclasses.field(default_factory=dict)

    def of_class(self, label: int) -> GaussianMixture | None:
        return self.classes.get(label)


def fit_prior_by_class(z: np.ndarray, labels: np.ndarray, components: int, seed: int = 0) -> LatentPrior:
    """The overall l-GMM on z [n, K] and a CLASS_COMPONENTS-component one for each label [n] with
    at least two sets."""
    from threadpoolctl import threadpool_limits

    found, counts = np.unique(labels, return_counts=True)
    # One BLAS thread: EM's small products ([n, K] by [K, K], ~1 ms each) took twice as long on
    # two threads as on one (BENCHMARKS.md, start-up), and the fit no longer varies with the
    # machine's thread count.
    with threadpool_limits(limits=1, user_api="blas"):
        classes = {int(c): fit_gmm(z[labels == c], CLASS_COMPONENTS, seed=seed) for c, m in zip(found, counts) if m >= 2}
        return LatentPrior(fit_gmm(z, components, seed=seed), classes)


def save_prior(prior: LatentPrior, path: Path) -> None:
    """prior.npz: weights/means/chol (overall) and class{c}_weights/... per fitted class."""
    arrays = {k: getattr(prior.overall, k) for k in _PARTS}
    for c, mixture in prior.classes.items():
        arrays.update({f"class{c}_{k}": getattr(mixture, k) for k in _PARTS})
    with atomic_path(path, force=True) as tmp, open(tmp, "wb") as f:
        # float32 halves the file (16 components x K^2 Cholesky factors); sampling reads them back as float64
        np.savez(f, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})


def _mixture(f: Any, prefix: str, path: Path) -> GaussianMixture:
    weights, means, chol = (np.asarray(f[prefix + k], np.float64) for k in _PARTS)
    prior = GaussianMixture(weights / weights.sum(), means, chol)  # float32 rounding: sum exactly 1 again
    if prior.means.ndim != 2 or prior.chol.shape != (*prior.means.shape, prior.means.shape[1]):
        raise InputError("latent prior arrays have inconsistent shapes", path)
    if not (np.isfinite(prior.weights).all() and np.isfinite(prior.means).all() and np.isfinite(prior.chol).all()):
        raise InputError("latent prior holds non-finite values", path)
    return prior


def load_prior(path: Path) -> LatentPrior:
    try:
        with np.load(path, allow_pickle=False) as f:
            overall = _mixture(f, "", path)
            classes = {}
            for key in f.files:
                match = _CLASS_KEY.fullmatch(key)
                if match:
                    c = int(match.group(1))
                    classes[c] = _mixture(f, f"class{c}_", path)
                    if classes[c].means.shape[1] != overall.means.shape[1]:
                        raise InputError(f"class {c}'s latent prior has another width than the overall one", path)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"not a latent prior file: {err}", path) from None
    return LatentPrior(overall, classes)
