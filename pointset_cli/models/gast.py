"""`gast`: adversarial set generation (Stelzner et al. 2020), a TSPN-style generator against a critic.

Generator: a set of i.i.d. N(0, I) noise vectors (one per point, TSPN's initial set) plus one
global noise vector per set -> Set Transformer blocks -> points. Size: k ~ p_c (a categorical
fitted by maximum likelihood on the data's sizes) when sampling; the data's own sizes in training.
Critic: a permutation-invariant Set Transformer (SAB blocks, PMA pooling) -> one logit per set.

Objective (simultaneous gradients; the critic and the rest are separate players of the optimiser,
each with its own clip and Adam state: SetModel.players):
    loss = D_loss(real, stop_gradient(fake)) + G_loss(fake; critic params under stop_gradient)
           + r1_weight / 2 * R1 + size_weight * size NLL
with the non-saturating GAN losses and the R1 penalty (squared gradient norm of the critic at real
sets, Mescheder et al. 2018). R1 rather than WGAN-GP: it is the penalty shown to make simultaneous
gradient descent converge locally, it needs no interpolation between sets (which for sets of
different sizes and unmatched orders has no clear meaning), and it works with the standard GAN loss.
Stopping gradients per term means the critic gets only D's gradient and the generator only G's,
so one optax update is the simultaneous GAN step.

Shapes: B batch, N points per set (padded), D point dimension, F width, E point noise,
Z global noise, C size classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.models import registry
from pointset_cli.models.layers import PMA, SAB, mlp, sizes_mask, zero_padding
from pointset_cli.models.point_process import (
    Cardinality,
    cardinality_log_prob,
    labels_or_uniform,
    latent_free_model,
    sample_sizes,
)


@dataclass(frozen=True)
class GastConfig:
    hidden: int = 64  # F
    heads: int = 4  # H; F must be divisible by H
    generator_blocks: int = 2  # SAB blocks turning the noise set into points
    critic_blocks: int = 2  # SAB blocks before the critic's PMA pooling
    # hidden layers of a per-point MLP before the critic's attention: it then compares local features,
    # not raw coordinates (without it, a run at the same settings collapsed: BENCHMARKS, GAST)
    critic_point_layers: int = 1
    point_noise: int = 16  # E, width of each point's i.i.d. noise (TSPN's initial set)
    set_noise: int = 32  # Z, one global noise vector per set: what makes two sets differ in shape
    # gamma in gamma/2 * R1. R1 sums the critic's squared gradient over every point and coordinate, so
    # it grows with the set size and the inverse square of the data's scale: at 1.0 (MNIST's [0, 1]
    # digits) the critic flattened until it told no set apart (D = 0.5); 0.01 keeps it discriminating.
    r1_weight: float = 0.01
    size_weight: float = 1.0  # weight of p_c's size NLL


class Generator(hk.Module):
    """(mask [B, N], labels [B]) -> points [B, N, D]; noise from hk.next_rng_key; equivariant in N."""

    def __init__(self, dim: int, cfg: GastConfig, n_classes: int, name: str | None = None):
        super().__init__(name=name)
        self.dim, self.cfg, self.n_classes = dim, cfg, n_classes

    def __call__(self, mask, labels):
        cfg = self.cfg
        point_rng, set_rng = jax.random.split(hk.next_rng_key())
        noise = jax.random.normal(point_rng, mask.shape + (cfg.point_noise,))  # [B, N, E]
        z = jax.random.normal(set_rng, (mask.shape[0], cfg.set_noise))  # [B, Z]
        h = hk.Linear(cfg.hidden)(noise) + hk.Linear(cfg.hidden)(z)[:, None, :]  # [B, N, F]
        if self.n_classes:
            h = h + hk.Embed(self.n_classes, cfg.hidden)(labels)[:, None, :]
        for _ in range(cfg.generator_blocks):
            h = SAB(cfg.hidden, cfg.heads)(h, mask)  # [B, N, F]
        return zero_padding(hk.Linear(self.dim)(h), mask)  # [B, N, D]


class Critic(hk.Module):
    """(points [B, N, D], mask [B, N], labels [B]) -> logit [B]; invariant to order and padding."""

    def __init__(self, cfg: GastConfig, n_classes: int, name: str | None = None):
        super().__init__(name=name)
        self.cfg, self.n_classes = cfg, n_classes

    def __call__(self, points, mask, labels):
        cfg = self.cfg
        h = hk.Linear(cfg.hidden)(zero_padding(points, mask))  # [B, N, F]
        if cfg.critic_point_layers:
            h = mlp([cfg.hidden] * (cfg.critic_point_layers + 1))(jax.nn.relu(h))  # [B, N, F], per point
        if self.n_classes:
            h = h + hk.Embed(self.n_classes, cfg.hidden)(labels)[:, None, :]
        for _ in range(cfg.critic_blocks):
            h = SAB(cfg.hidden, cfg.heads)(h, mask)  # [B, N, F]
        pooled = PMA(cfg.hidden, cfg.heads, 1)(h, mask)[:, 0]  # [B, F]
        return mlp([cfg.hidden, 1])(pooled)[:, 0]  # [B]


@registry.register(
    "adversarial", "gast", GastConfig,
    "GAST: TSPN-style generator vs Set Transformer critic, GAN + R1 penalty (no likelihood)",
    cardinality="size",
    tiny={"hidden": 16, "heads": 2, "generator_blocks": 1, "critic_blocks": 1, "point_noise": 4, "set_noise": 4},
)
def build(config, data, options: GastConfig):
    """The `gast` SetModel for `data` (a DataSpec); conditional when config.task is.

    loss: the combined objective above (metrics d_loss, g_loss, r1, size_nll, d_real, d_fake:
    the critic's mean probabilities); sample: k ~ p_c then the generator; no log_prob;
    encode / decode / reconstruct raise UsageError (the noise is not an encodable latent).
    """
    n_classes = data.n_classes if config.task == "conditional" else 0

    def functions():
        generator = Generator(data.dim, options, n_classes, name="generator")
        critic = Critic(options, n_classes, name="critic")
        sizes = Cardinality(data.n_max, n_classes, counts=data.sizes, name="cardinality")

        def init(points, mask, labels):
            critic(generator(mask, labels), mask, labels)
            return sizes(labels, mask)

        def draw(labels):
            mask = sizes_mask(sample_sizes(hk.next_rng_key(), sizes(labels)), data.n_max)
            return generator(mask, labels), mask

        return init, (generator, critic, sizes, draw)

    fns = hk.multi_transform(functions)
    generate_fn, critic_fn, sizes_fn, draw_fn = fns.apply

    def init(rng, batch):
        return fns.init(rng, batch.points, batch.mask, batch.labels)

    def loss(params, rng, batch):
        points, mask, labels = zero_padding(batch.points, batch.mask), batch.mask, batch.labels
        fake = generate_fn(params, rng, mask, labels)  # [B, N, D], the data's sizes
        frozen = {**params, **{k: jax.lax.stop_gradient(v) for k, v in params.items() if k.startswith("critic")}}

        def critic_real(x):
            logits = critic_fn(params, None, x, mask, labels)  # [B]
            return jnp.sum(logits), logits

        grad_real, d_real = jax.grad(critic_real, has_aux=True)(points)  # [B, N, D]; padding: 0
        d_fake = critic_fn(params, None, jax.lax.stop_gradient(fake), mask, labels)  # [B]
        d_loss = jnp.mean(jax.nn.softplus(-d_real) + jax.nn.softplus(d_fake))
        g_loss = jnp.mean(jax.nn.softplus(-critic_fn(frozen, None, fake, mask, labels)))
        r1 = jnp.mean(jnp.sum(grad_real**2, axis=(1, 2)))
        size_nll = -jnp.mean(cardinality_log_prob(sizes_fn(params, None, labels), mask))
        total = d_loss + g_loss + 0.5 * options.r1_weight * r1 + options.size_weight * size_nll
        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "r1": r1,
            "size_nll": size_nll,
            "d_real": jnp.mean(jax.nn.sigmoid(d_real)),
            "d_fake": jnp.mean(jax.nn.sigmoid(d_fake)),
        }
        return total, metrics

    def sample(params, rng, n, labels=None):
        label_rng, rng = jax.random.split(rng)
        return draw_fn(params, rng, labels_or_uniform(label_rng, n, labels, n_classes))

    return latent_free_model(config, data, init, loss, sample, players=("critic",))
