"""Set encoders: a padded set -> z [B, K], invariant to the order of the points and to the padding.

Glossary: B batch, N points (padded), D point dimension, C width, K latent size, k PMA seeds.
`tokens` says how z splits into a set for set-to-set decoders: z [B, K] is k tokens of K / k.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import haiku as hk
import jax.numpy as jnp

from pointset_cli.models import registry
from pointset_cli.errors import UsageError
from pointset_cli.models.layers import FSPool, ISAB, PMA, SAB, masked_pool, mlp, zero_padding

POOLS = ("sum", "mean", "max", "fspool")


class EncoderBuild(NamedTuple):
    make: Callable[[], hk.Module]  # constructs the module (inside a haiku transform)
    tokens: int  # T: z [B, K] is a set of T tokens of K / T (1 = one vector)


@dataclass(frozen=True)
class DeepSetsConfig:
    hidden: tuple[int, ...] = (128, 128)  # phi, the shared per-point MLP (Zaheer et al. use 2-3 layers)
    pool: str = "sum"  # sum | mean | max | fspool; sum is the paper's universal form, fspool is DSPN's
    pieces: int = 20  # FSPool knots; DSPN's MNIST setting
    rho: tuple[int, ...] = (128,)  # hidden layers of rho after pooling (then a linear map to K)


class DeepSets(hk.Module):
    """rho(pool_i phi(x_i)) (Zaheer et al. 2017): points [B, N, D], mask [B, N] -> z [B, K]."""

    def __init__(self, latent_dim: int, hidden, pool: str, pieces: int, rho, name: str | None = None):
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.hidden = tuple(hidden)
        self.pool = pool
        self.pieces = pieces
        self.rho = tuple(rho)

    def __call__(self, points, mask):
        features = mlp(self.hidden, name="phi", activate_final=True)(zero_padding(points, mask))  # [B, N, C]
        if self.pool == "fspool":
            pooled = FSPool(self.pieces)(features, mask, jnp.sum(mask, axis=1).astype(features.dtype))  # [B, C]
        else:
            pooled = masked_pool(features, mask, self.pool)  # [B, C]
        return mlp((*self.rho, self.latent_dim), name="rho")(pooled)  # [B, K]


@dataclass(frozen=True)
class SetTransformerConfig:
    width: int = 64  # C; the paper's 128 costs 4x the attention FLOPs for little gain on MNIST sets
    heads: int = 4  # H, the paper's setting
    blocks: int = 2  # stacked ISAB (or SAB) layers, as the paper's encoder
    inducing: int = 16  # m inducing points per ISAB (paper: 16-32); 0 = full SAB, O(N^2)
    seeds: int = 4  # k PMA seeds: z is this small set, which set-to-set decoders attend to
    # "full": each block with layer norms, an output projection and a 2-layer rFF; "light": the
    # official code's block, about half the FLOPs (no layer norm, no output projection, 1-layer rFF,
    # no rFF before PMA, and the first block reads the points themselves instead of an embedding)
    block: str = "full"


class SetTransformer(hk.Module):
    """(I)SAB x blocks, then PMA with k seeds (Lee et al. 2019): points [B, N, D] -> z [B, K].

    z is the PMA output set [B, k, C] mapped to [B, k, K / k] and flattened, so `latent_set(z, k)`
    gives back the encoder's intermediate set.
    """

    def __init__(self, latent_dim: int, width: int, heads: int, blocks: int, inducing: int, seeds: int,
                 light: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.width = width
        self.heads = heads
        self.blocks = blocks
        self.inducing = inducing
        self.seeds = seeds
        self.light = light

    def __call__(self, points, mask):
        x = zero_padding(points, mask)  # [B, N, D]
        if not self.light:  # the light block's query projection maps D to C itself, as the official code
            x = hk.Linear(self.width, name="embed")(x)  # [B, N, C]
        for i in range(self.blocks):
            if self.inducing:
                x = ISAB(self.width, self.heads, self.inducing, self.light, name=f"isab{i}")(x, mask)  # [B, N, C]
            else:
                x = SAB(self.width, self.heads, self.light, name=f"sab{i}")(x, mask)  # [B, N, C]
        seeds = PMA(self.width, self.heads, self.seeds, self.light)(x, mask)  # [B, k, C]
        latent = hk.Linear(self.latent_dim // self.seeds, name="to_latent")(seeds)  # [B, k, K / k]
        return latent.reshape(latent.shape[0], self.latent_dim)  # [B, K]


@registry.register("encoder", "deepsets", DeepSetsConfig, "DeepSets: shared point MLP, masked sum/mean/max/FSPool, MLP",
                   tiny={"hidden": (16,), "rho": (16,)})
def build_deepsets(cfg: DeepSetsConfig, latent_dim: int):
    if cfg.pool not in POOLS:
        raise UsageError(f"unknown pooling '{cfg.pool}'; valid: {', '.join(POOLS)}")
    return EncoderBuild(
        functools.partial(DeepSets, latent_dim, cfg.hidden, cfg.pool, cfg.pieces, cfg.rho, name="encoder"), 1
    )


@registry.register("encoder", "set_transformer", SetTransformerConfig,
                   "Set Transformer: masked ISAB/SAB blocks, PMA with k seeds (a small set)",
                   tiny={"width": 16, "heads": 2, "blocks": 1, "inducing": 4, "seeds": 2})
def build_set_transformer(cfg: SetTransformerConfig, latent_dim: int):
    if cfg.seeds < 1 or latent_dim % cfg.seeds:
        raise UsageError(f"latent_dim {latent_dim} must be a multiple of the Set Transformer's seeds ({cfg.seeds})")
    if cfg.width % cfg.heads:
        raise UsageError(f"Set Transformer width {cfg.width} must be a multiple of heads ({cfg.heads})")
    if cfg.block not in ("full", "light"):
        raise UsageError(f"unknown Set Transformer block '{cfg.block}'; valid: full, light")
    make = functools.partial(
        SetTransformer, latent_dim, cfg.width, cfg.heads, cfg.blocks, cfg.inducing, cfg.seeds, cfg.block == "light",
        name="encoder"
    )
    return EncoderBuild(make, cfg.seeds)
