"""Query decoder (DETR, Carion et al. 2020): learned queries read the latent set, one point each.

Glossary: B batch, K latent size, T latent tokens (the memory), S = n_max queries, C width,
H heads, D point dimension.
Each layer (post-norm, as DETR): self-attention among the queries, cross-attention to the memory,
feed-forward; the learned query embeddings are positional inputs added to the queries and keys at
every layer. DETR starts the content at zero; here it starts at the queries too, since a zero
content makes the first layer normalise a constant vector (gradients ~ 1/sqrt(eps) at init,
which DETR tames with a tiny learning rate and clipping). Each query emits a point and a presence logit
(DETR's "no object" class). Equivariant in the queries, invariant in the memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import haiku as hk
import jax

from pointset_cli.models import registry
from pointset_cli.models.cardinality import presence_mask
from pointset_cli.models.decoder import Decoded
from pointset_cli.models.layers import MultiHeadAttention, latent_set, layer_norm, learned_set, mlp


@dataclass(frozen=True)
class QueryDecoderConfig:
    width: int = 64  # C (DETR: 256, for images; points need far less)
    heads: int = 4  # H
    layers: int = 2  # DETR: 6; two already let queries agree on who takes which point
    ffn: int = 128  # feed-forward hidden width


class QueryTransformer(hk.Module):
    """query positions [B, S, C] + memory [B, T, Cm] (mask [B, T]) -> decoded queries [B, S, C]."""

    def __init__(self, width: int, heads: int, layers: int, ffn: int, name: str | None = None):
        super().__init__(name=name)
        self.width = width
        self.heads = heads
        self.layers = layers
        self.ffn = ffn

    def __call__(self, query_pos, memory, memory_mask=None):
        memory = hk.Linear(self.width, name="memory")(memory)  # [B, T, C]
        x = query_pos  # [B, S, C] content (see above)
        for i in range(self.layers):
            with hk.experimental.name_scope(f"layer{i}"):
                q = x + query_pos
                x = layer_norm("ln_self")(x + MultiHeadAttention(self.heads, self.width, name="self")(q, q, x))
                cross = MultiHeadAttention(self.heads, self.width, name="cross")(x + query_pos, memory, memory,
                                                                                 memory_mask)
                x = layer_norm("ln_cross")(x + cross)
                x = layer_norm("ln_ffn")(x + mlp([self.ffn, self.width], name="ffn")(x))  # [B, S, C]
        return x


class QueryDecoder(hk.Module):
    """z [B, K] -> points [B, S, D], presence [B, S]."""

    ordered = False

    def __init__(self, num_points: int, dim: int, tokens: int, width: int, heads: int, layers: int, ffn: int,
                 name: str | None = None):
        super().__init__(name=name)
        self.num_points = num_points
        self.dim = dim
        self.tokens = tokens
        self.transformer = QueryTransformer(width, heads, layers, ffn)

    def __call__(self, z, sizes=None):
        queries = learned_set(
            "queries", self.num_points, self.transformer.width, z.shape[0], hk.initializers.TruncatedNormal(1.0)
        )  # [B, S, C]
        x = self.transformer(queries, latent_set(z, self.tokens))  # [B, S, C]
        points = hk.Linear(self.dim, name="point")(x)  # [B, S, D]
        presence = jax.nn.sigmoid(hk.Linear(1, name="presence")(x)[..., 0])  # [B, S]
        return Decoded(points, presence_mask(presence, sizes, ordered=False), presence=presence)


@registry.register(
    "decoder", "queries", QueryDecoderConfig, "Queries (DETR): learned queries cross-attend to the latent set",
    cardinality="presence", encoder="set_transformer",
    tiny={"width": 16, "heads": 2, "layers": 1, "ffn": 16},
)
def build(cfg: QueryDecoderConfig, data, latent_dim: int, tokens: int):
    return functools.partial(
        QueryDecoder, data.n_max, data.dim, tokens, cfg.width, cfg.heads, cfg.layers, cfg.ffn, name="decoder"
    )
