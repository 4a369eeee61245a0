"""TSPN decoder (Kosiorek, Kim, Rezende 2020): transform an i.i.d. sampled initial set.

Glossary: B batch, K latent size, T latent tokens, S = n_max slots, E initial-point dimension,
C width, H heads, D point dimension.
A cardinality head (MLP on z -> logits over sizes 0..n_max) picks n; n points are drawn i.i.d.
from a learned diagonal Gaussian in E > D dimensions; transformer blocks (self-attention among the
points through m inducing points (ISAB) or in full, then cross-attention to the latent set
z = [B, T, K / T], both conditioned on z) move them,
and a linear map projects them to D. The blocks are permutation-equivariant, so the output set's
order carries no meaning. At training time the true sizes choose n.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.models import registry
from pointset_cli.models.decoder import Decoded
from pointset_cli.models.layers import ISAB, MAB, latent_set, mlp, sizes_mask


@dataclass(frozen=True)
class TSPNDecoderConfig:
    init_dim: int = 32  # E: the paper samples in a space wider than D so points are easy to tell apart
    width: int = 64  # C
    heads: int = 4  # H
    blocks: int = 2  # self- + cross-attention blocks (the paper uses 3)
    # m inducing points of each self-attention block (an ISAB, as the paper: O(S m)); 0 = full
    # self-attention among the S points, O(S^2), 10x slower per step at S = 342 on the CPU.
    inducing: int = 16
    size_hidden: tuple[int, ...] = (128,)  # cardinality classifier MLP


class TSPNTransformer(hk.Module):
    """x [B, S, C] (mask [B, S]) + conditioning z [B, K] + context [B, T, Ck] -> [B, S, C], equivariant in x."""

    def __init__(self, width: int, heads: int, blocks: int, inducing: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.width = width
        self.heads = heads
        self.blocks = blocks
        self.inducing = inducing

    def __call__(self, x, mask, z, context):
        condition = hk.Linear(self.width, name="condition")(z)[:, None, :]  # [B, 1, C]
        context = hk.Linear(self.width, name="context")(context)  # [B, T, C]
        for i in range(self.blocks):
            if self.inducing:
                x = ISAB(self.width, self.heads, self.inducing, name=f"self{i}")(x + condition, mask)  # [B, S, C]
            else:
                x = MAB(self.width, self.heads, name=f"self{i}")(x + condition, x + condition, mask)  # [B, S, C]
            x = MAB(self.width, self.heads, name=f"cross{i}")(x, context)  # [B, S, C]
        return x


class TSPNDecoder(hk.Module):
    """z [B, K] -> points [B, S, D], mask [B, S] (first n slots), size logits [B, n_max + 1]
    (without a size head the sizes must be given)."""

    ordered = False

    def __init__(self, num_points: int, dim: int, tokens: int, init_dim: int, width: int, heads: int, blocks: int,
                 inducing: int, size_hidden, given_sizes: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.num_points = num_points
        self.dim = dim
        self.tokens = tokens
        self.init_dim = init_dim
        self.size_hidden = tuple(size_hidden)
        self.size_head = not given_sizes  # given: the latent carries the sizes, no classifier
        self.transformer = TSPNTransformer(width, heads, blocks, inducing)

    def __call__(self, z, sizes=None):
        size_logits = None
        if self.size_head:
            size_logits = mlp((*self.size_hidden, self.num_points + 1), name="size_head")(z)  # [B, n_max + 1]
        if sizes is None:
            sizes = jnp.argmax(size_logits, axis=-1)  # [B]
        mask = sizes_mask(sizes, self.num_points)  # [B, S]
        mean = hk.get_parameter("init_mean", [self.init_dim], init=jnp.zeros)
        log_scale = hk.get_parameter("init_log_scale", [self.init_dim], init=jnp.zeros)
        noise = jax.random.normal(hk.next_rng_key(), (z.shape[0], self.num_points, self.init_dim), z.dtype)
        initial = mean + jnp.exp(log_scale) * noise  # [B, S, E] i.i.d.; slots beyond n are masked out
        x = hk.Linear(self.transformer.width, name="embed")(initial)  # [B, S, C]
        x = self.transformer(x, mask, z, latent_set(z, self.tokens))  # [B, S, C]
        points = hk.Linear(self.dim, name="project")(x)  # [B, S, D]
        return Decoded(points, mask, size_logits=size_logits)


@registry.register(
    "decoder", "tspn", TSPNDecoderConfig,
    "TSPN: i.i.d. sampled set transformed by attention; size from z or a classifier", cardinality="size",
    encoder="set_transformer", given_sizes=True,
    tiny={"init_dim": 8, "width": 16, "heads": 2, "blocks": 1, "size_hidden": (16,)},
)
def build(cfg: TSPNDecoderConfig, data, latent_dim: int, tokens: int):
    return functools.partial(
        TSPNDecoder, data.n_max, data.dim, tokens, cfg.init_dim, cfg.width, cfg.heads, cfg.blocks, cfg.inducing,
        cfg.size_hidden, name="decoder",
    )
