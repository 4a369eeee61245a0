"""`setflow`: an exchangeable normalising flow for f_k, so log p(X, k) is exact and order-invariant.

Base noise is i.i.d. N(0, I) for each of the k points. Each flow step is
  1. an elementwise affine (ActNorm-like; per class when conditional), then
  2. (D >= 2) an affine coupling over the coordinates: the coordinates in `keep` pass through and
     the others are scaled and shifted by a Set Transformer over the kept coordinates of ALL the
     points of the set. The conditioner is permutation-equivariant, so the flow is too, and the
     Jacobian is block-triangular: log|det| = sum over real points of the log scales.
The coordinate split alternates between steps. In 1D there is nothing to split: the flow is an
elementwise affine per class and f_k is i.i.d. Gaussian (the setflow then adds nothing over
`poisson` with one component).

Shapes: B batch, N points per set (padded), D point dimension, F hidden width, H heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from pointset_cli.models import registry
from pointset_cli.models.layers import SAB, zero_padding
from pointset_cli.models.point_process import density_set_model, gaussian_log_prob


@dataclass(frozen=True)
class SetFlowConfig:
    steps: int = 6  # flow steps (affine + coupling); alternating splits need an even count in 2D
    hidden: int = 64  # F, conditioner width
    heads: int = 4  # H; F must be divisible by H
    blocks: int = 1  # self-attention blocks per conditioner (interaction between points)
    scale_bound: float = 3.0  # |log scale| per coupling, soft-clamped: keeps inverses well conditioned
    cardinality: str = "categorical"  # categorical | poisson (p_c)
    unit_volume: float = 1.0  # U in k! U^k; eval rescales to the data's bounding box by default


class _Coupling(hk.Module):
    """Affine coupling of the coordinates not in `keep`, conditioned on the kept ones of all points."""

    def __init__(self, keep: np.ndarray, cfg: SetFlowConfig, name: str | None = None):
        super().__init__(name=name)
        self.keep = jnp.asarray(keep, jnp.float32)  # [D] 1 = passes through
        self.cfg = cfg

    def _scale_shift(self, x, mask, context):
        h = hk.Linear(self.cfg.hidden)(x * self.keep)  # [B, N, F]
        if context is not None:
            h = h + context[:, None, :]
        for _ in range(self.cfg.blocks):
            h = SAB(self.cfg.hidden, self.cfg.heads)(h, mask)  # [B, N, F]
        # zero-init output: every coupling starts as the identity
        raw = hk.Linear(2 * x.shape[-1], w_init=jnp.zeros)(jax.nn.gelu(h))  # [B, N, 2D]
        log_scale, shift = jnp.split(raw, 2, axis=-1)
        bound = self.cfg.scale_bound
        change = 1.0 - self.keep
        return bound * jnp.tanh(log_scale / bound) * change, shift * change

    def forward(self, x, mask, context):
        log_scale, shift = self._scale_shift(x, mask, context)
        logdet = jnp.sum(jnp.where(mask[..., None], log_scale, 0.0), axis=(1, 2))  # [B]
        return x * jnp.exp(log_scale) + shift, logdet

    def inverse(self, y, mask, context):
        log_scale, shift = self._scale_shift(y, mask, context)  # kept coordinates equal x's
        return (y - shift) * jnp.exp(-log_scale)


class _Affine(hk.Module):
    """Elementwise x * exp(a) + b with a, b [R, D] per class row (R = classes, or 1)."""

    def __init__(self, dim: int, rows: int, name: str | None = None):
        super().__init__(name=name)
        self.dim = dim
        self.rows = rows

    def _params(self, labels):
        idx = labels if self.rows > 1 else jnp.zeros_like(labels)
        log_scale = hk.get_parameter("log_scale", [self.rows, self.dim], init=jnp.zeros)[idx]
        shift = hk.get_parameter("shift", [self.rows, self.dim], init=jnp.zeros)[idx]
        return log_scale[:, None, :], shift[:, None, :]  # [B, 1, D]

    def forward(self, x, mask, labels):
        log_scale, shift = self._params(labels)
        k = jnp.sum(mask, axis=-1)
        return x * jnp.exp(log_scale) + shift, k * jnp.sum(log_scale, axis=(1, 2))

    def inverse(self, y, labels):
        log_scale, shift = self._params(labels)
        return (y - shift) * jnp.exp(-log_scale)


class SetFlow(hk.Module):
    """Exchangeable flow data -> noise: log f_k(X) = log N(z; 0, I) + log|det dz/dx| over real points.

    `forward` maps data x [B, N, D] to noise z; `inverse` maps noise back. Padded points are
    zeroed on entry, masked out of attention and out of every log-determinant.
    """

    def __init__(self, dim: int, cfg: SetFlowConfig, n_classes: int = 0, latent_dim: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.dim = dim
        self.cfg = cfg
        self.n_classes = n_classes
        self.latent_dim = latent_dim
        self.affines = [_Affine(dim, max(n_classes, 1), name=f"affine_{i}") for i in range(cfg.steps)]
        self.couplings = []
        if dim >= 2:
            first = (np.arange(dim) < dim // 2).astype(np.float32)
            self.couplings = [
                _Coupling(first if i % 2 == 0 else 1.0 - first, cfg, name=f"coupling_{i}")
                for i in range(cfg.steps)
            ]

    def _context(self, labels, latent):
        """[B, F] what every coupling's conditioner sees beside the points: label and/or latent, or None."""
        if not self.couplings or not (self.n_classes or self.latent_dim):
            return None
        context = jnp.zeros((labels.shape[0], self.cfg.hidden))
        if self.n_classes:
            context = context + hk.Embed(self.n_classes, self.cfg.hidden, name="label_embedding")(labels)
        if self.latent_dim:
            context = context + hk.Linear(self.cfg.hidden, name="latent_context")(latent)
        return context

    def forward(self, x, mask, labels, latent=None):
        x = zero_padding(x, mask)
        context = self._context(labels, latent)
        logdet = jnp.zeros(x.shape[0])
        for i, affine in enumerate(self.affines):
            x, ld = affine.forward(x, mask, labels)
            logdet = logdet + ld
            if self.couplings:
                x, ld = self.couplings[i].forward(x, mask, context)
                logdet = logdet + ld
        return x, logdet

    def inverse(self, z, mask, labels, latent=None):
        z = zero_padding(z, mask)
        context = self._context(labels, latent)
        for i in reversed(range(self.cfg.steps)):
            if self.couplings:
                z = self.couplings[i].inverse(z, mask, context)
            z = self.affines[i].inverse(z, labels)
        return zero_padding(z, mask)

    def log_prob(self, x, mask, labels, latent=None):
        z, logdet = self.forward(x, mask, labels, latent)
        return gaussian_log_prob(z, mask) + logdet

    def sample(self, mask, labels, latent=None):
        z = jax.random.normal(hk.next_rng_key(), mask.shape + (self.dim,))
        return self.inverse(z, mask, labels, latent)


@registry.register(
    "likelihood", "setflow", SetFlowConfig,
    "exchangeable coupling flow with Set Transformer conditioners; exact order-free NLL",
    cardinality="size", latent=True,
    tiny={"steps": 2, "hidden": 16, "heads": 2, "scale_bound": 1.0},
)
def build(config, data, options: SetFlowConfig, make_encoder=None):
    """The `setflow` SetModel for `data` (a DataSpec); conditional when config.task is, latent-conditioned
    (a VAE, as PointFlow) with `make_encoder`."""
    return density_set_model(
        config, data, options,
        lambda n_classes, latent_dim: SetFlow(data.dim, options, n_classes, latent_dim),
        make_encoder,
    )
