"""Sets as finite point processes: the density of a set and its size distribution.

The density of an unordered set X = {x_1..x_k} (Vu et al., "Model-Based Multiple Instance
Learning") is

    p(X, k) = p_c(k) * k! * U^k * f_k(x_1, ..., x_k)

with p_c the size distribution, k! the orderings of the points, U a unit volume that makes
densities of sets of different sizes comparable, and f_k an order-invariant density on R^{kD}.
It is a density with respect to the reference measure sum_k 1/(k! U^k) dx_1..dx_k, so integrating
p(X, k) / (k! U^k) over R^{kD} gives back p_c(k).

Shapes: B batch, N points per set (padded), D point dimension, n_max the largest training size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from pointset_cli.errors import UsageError
from pointset_cli.models.layers import sizes_mask


class SetLogDensity(NamedTuple):
    """The two terms of log p(X, k), per set: size + points = total."""

    size: jax.Array  # [B] log p_c(k)
    points: jax.Array  # [B] log k! + k log U + log f_k(X)
    k: jax.Array  # [B] float, the set sizes

    @property
    def total(self) -> jax.Array:
        return self.size + self.points


def log_factorial(k: jax.Array) -> jax.Array:
    """log k! for (integer-valued) k of any shape."""
    return jax.scipy.special.gammaln(jnp.asarray(k, jnp.float32) + 1.0)


def set_log_density(
    log_pc: jax.Array, log_fk: jax.Array, mask: jax.Array, unit_volume: float
) -> SetLogDensity:
    """Assemble log p(X, k) from log p_c(k) [B] and log f_k(X) [B]; `mask` [B, N] gives k."""
    k = jnp.sum(mask, axis=-1).astype(jnp.float32)
    points = log_factorial(k) + k * math.log(unit_volume) + log_fk
    return SetLogDensity(size=log_pc, points=points, k=k)


def nll_metrics(terms: SetLogDensity, unit_volume: float) -> dict[str, jax.Array]:
    """Mean NLL per set in nats (total, size term, point term) and bits per point.

    bits_per_point is the point term summed over sets divided by the number of points, in bits:
    it ignores the size term so sets of different sizes weigh by their point count.
    """
    n_points = jnp.maximum(jnp.sum(terms.k), 1.0)
    return {
        "nll": -jnp.mean(terms.total),
        "size_nll": -jnp.mean(terms.size),
        "point_nll": -jnp.mean(terms.points),
        "bits_per_point": -jnp.sum(terms.points) / (n_points * math.log(2.0)),
        "unit_volume": jnp.asarray(unit_volume, jnp.float32),
    }


def box_volume(points: jax.Array, mask: jax.Array) -> float:
    """Volume of the axis-aligned bounding box of all real points in [B, N, D] (the default U)."""
    pts = np.asarray(points)[np.asarray(mask, bool)]
    if pts.size == 0:
        return 1.0
    return float(np.prod(np.maximum(pts.max(0) - pts.min(0), 1e-6)))


def poisson_log_pmf(k: jax.Array, rate: jax.Array) -> jax.Array:
    """log Poisson(k; rate), elementwise."""
    return k * jnp.log(rate) - rate - log_factorial(k)


TAIL_RATIO = 0.5  # sizes above n_max share the tail mass geometrically: P(n_max + j | tail) = (1 - r) r^(j - 1)


class Cardinality(hk.Module):
    """p_c(k) over every k >= 0: a categorical (or a Poisson), one per class when conditional.

    Returns log p_c [B, n_max + 2]: columns 0..n_max, then the log mass of all sizes above n_max
    (the tail), so a set larger than any training set (7 of MNIST's 10,000 test digits) gets a
    finite density rather than zero. `kind="categorical"` learns n_max + 2 logits, the last one
    the tail's; `kind="poisson"` learns one log rate: the columns are the Poisson pmf and the tail
    its remaining mass. They start at the training sizes' histogram `counts` (index = size; DataSpec.sizes)
    or, without it, at the init batch's `mask`, instead of uniform: the maximum-likelihood p_c is then
    where training begins, where a uniform start over a few hundred sizes costs many steps of an
    otherwise solved problem (and GAST samples sets of any size until then).
    """

    def __init__(self, n_max: int, n_classes: int = 0, kind: str = "categorical", counts: Sequence[int] = (),
                 name=None):
        super().__init__(name=name)
        self.n_max = n_max
        self.n_classes = n_classes
        self.kind = kind
        self.counts = np.zeros(n_max + 1)  # [n_max + 1] training sets per size
        given = np.asarray(counts, np.float64)[: n_max + 1]
        self.counts[: len(given)] = given

    def __call__(self, labels: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """labels [B] int (mask [B, N] of the init batch, optional) -> log p_c [B, n_max + 2] (normalised)."""
        rows = max(self.n_classes, 1)
        k = None if mask is None else jnp.sum(mask, axis=-1)  # [B]
        idx = labels if self.n_classes > 0 else jnp.zeros_like(labels)
        if self.kind == "poisson":
            log_rate = hk.get_parameter(
                "log_rate", [rows], init=lambda s, d: jnp.full(s, jnp.log(self._mean_size(k)), d)
            )
            ks = jnp.arange(self.n_max + 1, dtype=jnp.float32)
            head = poisson_log_pmf(ks[None, :], jnp.exp(log_rate)[idx][:, None])  # [B, n_max + 1]
            # the clamp keeps the gradient finite when the tail mass underflows to 0
            tail = jnp.log(jnp.maximum(-jnp.expm1(jax.nn.logsumexp(head, axis=-1)), 1e-30))  # [B]
            return jnp.concatenate([head, tail[:, None]], axis=-1)
        table = hk.get_parameter("logits", [rows, self.n_max + 2], init=lambda s, d: self._histogram(k, s, d))
        return jax.nn.log_softmax(table[idx], axis=-1)

    def _counts(self, k) -> jax.Array | None:
        """[n_max + 2] sets per size (the tail column 0): the training histogram, else the batch's, else None."""
        if self.counts.sum() > 0:
            return jnp.asarray(np.append(self.counts, 0.0), jnp.float32)
        return None if k is None else jnp.zeros(self.n_max + 2).at[k].add(1.0)

    def _mean_size(self, k):
        counts = self._counts(k)
        if counts is None:
            return max(self.n_max / 2, 1.0)
        return jnp.maximum(jnp.sum(counts * jnp.arange(self.n_max + 2)) / jnp.sum(counts), 0.5)

    def _histogram(self, k, shape, dtype):
        counts = self._counts(k)
        if counts is None:
            return jnp.zeros(shape, dtype)
        return jnp.broadcast_to(jnp.log(counts + 0.5), shape).astype(dtype)  # +0.5: unseen sizes stay possible


def cardinality_log_prob(log_pc: jax.Array, mask: jax.Array) -> jax.Array:
    """log p_c(k) [B] of each set's size k = sum(mask), from log p_c [B, n_max + 2] (`Cardinality`).

    A size above n_max gets the tail's mass times its geometric share (`TAIL_RATIO`).
    """
    k = jnp.sum(mask, axis=-1)
    n_max = log_pc.shape[-1] - 2
    column = jnp.take_along_axis(log_pc, jnp.minimum(k, n_max + 1)[:, None], axis=-1)[:, 0]
    excess = jnp.maximum(k - n_max, 1).astype(jnp.float32)
    share = math.log1p(-TAIL_RATIO) + (excess - 1.0) * math.log(TAIL_RATIO)
    return column + jnp.where(k > n_max, share, 0.0)


def sample_sizes(rng: jax.Array, log_pc: jax.Array) -> jax.Array:
    """Draw k [B] int32 from log p_c [B, n_max + 2], conditioned on k <= n_max (what a padded set holds)."""
    return jax.random.categorical(rng, log_pc[:, :-1], axis=-1).astype(jnp.int32)


def gaussian_log_prob(z: jax.Array, mask: jax.Array) -> jax.Array:
    """Sum over real points of log N(z; 0, I): z [B, N, D], mask [B, N] -> [B]."""
    per_point = -0.5 * jnp.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
    return jnp.sum(jnp.where(mask, per_point, 0.0), axis=-1)


class PointDensity(Protocol):
    """A haiku module giving an order-invariant density f_k over the real points of each set."""

    def log_prob(self, x: jax.Array, mask: jax.Array, labels: jax.Array, latent: jax.Array | None = None) -> jax.Array:
        """x [B, N, D], mask [B, N], labels [B], latent [B, K] or None -> log f_k(X) [B]; padding never matters."""

    def sample(self, mask: jax.Array, labels: jax.Array, latent: jax.Array | None = None) -> jax.Array:
        """mask [B, N], labels [B], latent [B, K] or None -> x [B, N, D] drawn from f_k (padding zero);
        uses hk.next_rng_key."""


def gaussian_kl(mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """KL(N(mean, diag exp(log_scale)^2) || N(0, I)) [B] from mean, log_scale [B, K]."""
    return 0.5 * jnp.sum(mean**2 + jnp.exp(2.0 * log_scale) - 1.0 - 2.0 * log_scale, axis=-1)


def latent_free_model(config: Any, data: Any, init, loss, sample, log_prob=None, players: tuple[str, ...] = ()) -> Any:
    """A SetModel without a latent: encode / decode / reconstruct raise a UsageError naming it."""
    from pointset_cli.models.setmodel import SetModel

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise UsageError(
            f"model '{config.name}' has no latent: it cannot encode, decode or reconstruct "
            "(use sample, or the NLL from eval)"
        )

    return SetModel(
        config=config, data=data, init=init, loss=loss, encode=refuse, decode=refuse, reconstruct=refuse,
        sample=sample, log_prob=log_prob, cardinality="size", players=players,
    )


def labels_or_uniform(rng: jax.Array, n: int, labels: Any, n_classes: int) -> jax.Array:
    """The given labels [n], or n labels drawn uniformly over the classes (all 0 when unconditional)."""
    if labels is None:
        return jax.random.randint(rng, (n,), 0, max(n_classes, 1))
    return jnp.asarray(labels, jnp.int32)


def density_set_model(
    config: Any,
    data: Any,
    options: Any,
    make_density: Callable[[int, int], PointDensity],
    make_encoder: Callable[[], Any] | None = None,
) -> Any:
    """A SetModel for p(X, k) = p_c(k) k! U^k f_k(X) with f_k from `make_density(n_classes, latent_dim)`.

    `options` (the model's frozen config) gives `cardinality` and `unit_volume`; the model is
    conditional on the class label when config.task is "conditional".

    With `make_encoder` (a permutation-invariant set encoder, `--encoder NAME`) the points are
    conditioned on a latent z [B, K] (K = config.latent_dim) as in a VAE (PointFlow's structure):
    q(z | X) = N(mu(E(X)), diag sigma(E(X))^2), prior N(0, I), and log f_k(X) is replaced by the
    one-sample ELBO  log f_k(X | z) - KL(q || prior),  z ~ q, a lower bound on log f_k(X) in
    expectation; so the NLL is an upper bound, still comparable across sizes. log_prob draws z with
    a fixed key (deterministic scores); the loss with the training step's key. Sampling draws
    z ~ N(0, I). p_c stays unconditional.

    loss = mean NLL per set in nats (metrics nll, size_nll, point_nll, bits_per_point,
    unit_volume, and kl with a latent); log_prob [B] = log p(X, k) with the model's U; sample draws
    labels uniformly when the model is conditional and none are given, then k ~ p_c, then the points.
    encode / decode / reconstruct raise UsageError.
    """
    n_classes = data.n_classes if config.task == "conditional" else 0
    unit_volume = options.unit_volume
    latent_dim = config.latent_dim if make_encoder is not None else 0

    def functions():
        density = make_density(n_classes, latent_dim)
        sizes = Cardinality(data.n_max, n_classes, options.cardinality, counts=data.sizes)
        if latent_dim:
            encoder = make_encoder()
            mean_head = hk.Linear(latent_dim, w_init=jnp.zeros, name="posterior_mean")  # q starts at the prior
            scale_head = hk.Linear(latent_dim, w_init=jnp.zeros, name="posterior_log_scale")

        def terms(points, mask, labels):
            log_pc = cardinality_log_prob(sizes(labels, mask), mask)
            if not latent_dim:
                log_fk, kl = density.log_prob(points, mask, labels), jnp.zeros(points.shape[0])
            else:
                h = encoder(points, mask).reshape(points.shape[0], -1)  # [B, K]
                mean, log_scale = mean_head(h), scale_head(h)
                z = mean + jnp.exp(log_scale) * jax.random.normal(hk.next_rng_key(), mean.shape)
                kl = gaussian_kl(mean, log_scale)
                log_fk = density.log_prob(points, mask, labels, z) - kl
            return set_log_density(log_pc, log_fk, mask, unit_volume), kl

        def draw(labels):
            mask = sizes_mask(sample_sizes(hk.next_rng_key(), sizes(labels)), data.n_max)
            if not latent_dim:
                return density.sample(mask, labels), mask
            return density.sample(mask, labels, jax.random.normal(hk.next_rng_key(), (labels.shape[0], latent_dim))), mask

        def init(points, mask, labels):
            terms(points, mask, labels)
            return draw(labels)

        return init, (terms, draw)

    fns = hk.multi_transform(functions)
    terms_fn, draw_fn = fns.apply
    fixed_key = jax.random.PRNGKey(0)

    def init(rng, batch):
        return fns.init(rng, batch.points, batch.mask, batch.labels)

    def log_prob(params, batch):
        return terms_fn(params, fixed_key, batch.points, batch.mask, batch.labels)[0].total

    def loss(params, rng, batch):
        terms, kl = terms_fn(params, fixed_key if rng is None else rng, batch.points, batch.mask, batch.labels)
        metrics = nll_metrics(terms, unit_volume)
        if latent_dim:
            metrics["kl"] = jnp.mean(kl)
        return metrics["nll"], metrics

    def sample(params, rng, n, labels=None):
        label_rng, rng = jax.random.split(rng)
        return draw_fn(params, rng, labels_or_uniform(label_rng, n, labels, n_classes))

    return latent_free_model(config, data, init, loss, sample, log_prob)
