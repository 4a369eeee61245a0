"""MLP decoder: z -> a fixed number of points by an MLP and a reshape (the baseline).

Glossary: B batch, K latent size, S = n_max output points, D point dimension.
It has no built-in symmetry: it must learn from data that its S outputs form a set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import haiku as hk
import jax.numpy as jnp

from pointset_cli.models import registry
from pointset_cli.models.decoder import Decoded
from pointset_cli.models.layers import mlp, sizes_mask


@dataclass(frozen=True)
class MLPDecoderConfig:
    hidden: tuple[int, ...] = (256, 256)  # two hidden layers, as the usual point-cloud MLP baselines


class MLPDecoder(hk.Module):
    """z [B, K] -> points [B, S, D]; with sizes, the first `sizes` outputs are the set."""

    ordered = False

    def __init__(self, num_points: int, dim: int, hidden, name: str | None = None):
        super().__init__(name=name)
        self.num_points = num_points
        self.dim = dim
        self.hidden = tuple(hidden)

    def __call__(self, z, sizes=None):
        flat = mlp((*self.hidden, self.num_points * self.dim))(z)  # [B, S * D]
        points = flat.reshape(z.shape[0], self.num_points, self.dim)  # [B, S, D]
        if sizes is None:
            mask = jnp.ones(points.shape[:2], bool)
        else:
            mask = sizes_mask(sizes, self.num_points)
        return Decoded(points, mask)


@registry.register(
    "decoder", "mlp", MLPDecoderConfig, "MLP: z to n_max points by an MLP and a reshape (fixed size)",
    cardinality="fixed", encoder="deepsets",
    tiny={"hidden": (32,)},
)
def build(cfg: MLPDecoderConfig, data, latent_dim: int, tokens: int):
    return functools.partial(MLPDecoder, data.n_max, data.dim, cfg.hidden, name="decoder")
