"""`poisson`: the i.i.d. cluster-process baseline, f_k(X) = prod_i f(x_i).

f is a mixture of M diagonal Gaussians (one mixture per class when conditional; with an encoder, its
means and weights move with a latent, see point_process.density_set_model), p_c a learned
categorical over 0..n_max plus a tail (or a Poisson). With a Poisson p_c of rate L this is exactly
the Poisson point process of intensity L f(x), whose density is exp(-L) prod_i U L f(x_i), for
every k <= n_max.

Shapes: B batch, N points per set (padded), D point dimension, M mixture components,
R mixture rows (classes, or 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.models import registry
from pointset_cli.models.layers import zero_padding
from pointset_cli.models.point_process import density_set_model


@dataclass(frozen=True)
class PoissonConfig:
    components: int = 16  # M; MNIST digits need several blobs, a single Gaussian is a poor baseline
    cardinality: str = "categorical"  # categorical | poisson (p_c)
    unit_volume: float = 1.0  # U in k! U^k; eval rescales to the data's bounding box by default


class GaussianMixture(hk.Module):
    """An i.i.d. density over points: log f_k(X) = sum_i log sum_m w_m N(x_i; mu_m, diag s_m^2).

    The means start at M random real points of the first batch and the scales at the batch's
    spread, so training starts on the data rather than at the origin.
    """

    def __init__(self, dim: int, components: int, n_classes: int = 0, latent_dim: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.dim = dim
        self.components = components
        self.n_classes = n_classes
        self.latent_dim = latent_dim

    def _params(self, labels, latent=None, x=None, mask=None):
        rows, m, d = max(self.n_classes, 1), self.components, self.dim

        def init_means(shape, dtype):
            if x is None:
                return jnp.zeros(shape, dtype)
            flat, real = x.reshape(-1, d), mask.reshape(-1).astype(jnp.float32)
            pick = jax.random.choice(hk.next_rng_key(), flat.shape[0], (rows * m,), p=real / real.sum())
            return flat[pick].reshape(shape).astype(dtype)

        def init_log_scales(shape, dtype):
            if x is None:
                return jnp.zeros(shape, dtype)
            real = mask[..., None]
            mean = jnp.sum(jnp.where(real, x, 0.0), (0, 1)) / jnp.maximum(real.sum(), 1)
            var = jnp.sum(jnp.where(real, (x - mean) ** 2, 0.0), (0, 1)) / jnp.maximum(real.sum(), 1)
            spread = jnp.maximum(jnp.sqrt(var), 1e-3) / m ** (1.0 / d)
            return jnp.broadcast_to(jnp.log(spread), shape).astype(dtype)

        idx = labels if self.n_classes > 0 else jnp.zeros_like(labels)
        means = hk.get_parameter("means", [rows, m, d], init=init_means)[idx]  # [B, M, D]
        log_scales = hk.get_parameter("log_scales", [rows, m, d], init=init_log_scales)[idx]
        logits = hk.get_parameter("logits", [rows, m], init=jnp.zeros)[idx]  # [B, M]
        if self.latent_dim:  # a latent moves the means and reweights the components (zero at init)
            means = means + hk.Linear(m * d, w_init=jnp.zeros, name="latent_means")(latent).reshape(-1, m, d)
            logits = logits + hk.Linear(m, w_init=jnp.zeros, name="latent_logits")(latent)
        return means, log_scales, jax.nn.log_softmax(logits, axis=-1)

    def log_prob(self, x, mask, labels, latent=None):
        x = zero_padding(x, mask)  # garbage padding must not reach exp/log
        means, log_scales, log_w = self._params(labels, latent, x, mask)
        z = (x[:, :, None, :] - means[:, None]) * jnp.exp(-log_scales[:, None])  # [B, N, M, D]
        log_comp = -0.5 * jnp.sum(z**2, -1) - jnp.sum(log_scales, -1)[:, None] - 0.5 * self.dim * math.log(
            2 * math.pi
        )  # [B, N, M]
        per_point = jax.nn.logsumexp(log_w[:, None, :] + log_comp, axis=-1)  # [B, N]
        return jnp.sum(jnp.where(mask, per_point, 0.0), axis=-1)

    def sample(self, mask, labels, latent=None):
        means, log_scales, log_w = self._params(labels, latent)
        comp_rng, noise_rng = jax.random.split(hk.next_rng_key())
        comp = jax.random.categorical(comp_rng, log_w[:, None, :], shape=mask.shape)  # [B, N]
        mu = jnp.take_along_axis(means, comp[..., None], axis=1)  # [B, N, D]
        scale = jnp.exp(jnp.take_along_axis(log_scales, comp[..., None], axis=1))
        x = mu + scale * jax.random.normal(noise_rng, mu.shape)
        return zero_padding(x, mask)


@registry.register(
    "likelihood", "poisson", PoissonConfig,
    "i.i.d. cluster process: Gaussian-mixture points, learned size law; exact NLL (baseline)",
    cardinality="size", latent=True,
    tiny={"components": 3},
)
def build(config, data, options: PoissonConfig, make_encoder=None):
    """The `poisson` SetModel for `data` (a DataSpec); conditional when config.task is, latent-conditioned
    (a VAE) with `make_encoder`."""
    return density_set_model(
        config, data, options,
        lambda n_classes, latent_dim: GaussianMixture(data.dim, options.components, n_classes, latent_dim),
        make_encoder,
    )
