"""Building blocks shared by the encoders and decoders: MLPs, masked attention, Set Transformer blocks.

Glossary: B batch, N points (keys / inputs), M queries, D point dimension, C channels (width),
H heads, S slots, T latent tokens, K latent size.
Every block takes a key mask [B, N] (True = real) so padding never changes a real output;
padded query rows produce values that later blocks ignore through the same mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.models.sorting import permute, sort_order


def mlp(sizes: Sequence[int], name: str | None = None, activate_final: bool = False) -> hk.nets.MLP:
    """A ReLU MLP applied on the last axis (so per point when given [B, N, C])."""
    return hk.nets.MLP(list(sizes), activation=jax.nn.relu, activate_final=activate_final, name=name)


def layer_norm(name: str | None = None) -> hk.LayerNorm:
    return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name=name)


def zero_padding(points: jax.Array, mask: jax.Array) -> jax.Array:
    """points [B, N, D] with padded rows set to 0, so no NaN or huge garbage reaches a matmul."""
    return jnp.where(mask[..., None], points, 0.0)


def sizes_mask(sizes: jax.Array, n: int) -> jax.Array:
    """[B] sizes -> [B, n] bool mask of the first `sizes` slots."""
    return jnp.arange(n)[None, :] < sizes[:, None]


def latent_set(z: jax.Array, tokens: int) -> jax.Array:
    """z [B, K] viewed as a set of T = `tokens` vectors [B, T, K / T] (the Set Transformer's seeds)."""
    return z.reshape(z.shape[0], tokens, z.shape[1] // tokens)


def learned_set(name: str, rows: int, width: int, batch: int, init=None) -> jax.Array:
    """A learned [rows, width] parameter (inducing points, seeds, queries) repeated over the batch -> [B, rows, width]."""
    init = init or hk.initializers.VarianceScaling(1.0, "fan_avg", "uniform")
    value = hk.get_parameter(name, [rows, width], init=init)
    return jnp.broadcast_to(value, (batch, rows, width))


def attention_weights(logits: jax.Array, key_mask: jax.Array | None) -> jax.Array:
    """Softmax over keys (last axis) of logits [..., M, N]; masked keys get exactly 0 weight."""
    if key_mask is None:
        return jax.nn.softmax(logits, axis=-1)
    # key_mask [B, N] -> broadcast over heads and queries: [B, 1, 1, N]
    mask = key_mask[:, None, None, :]
    weights = jax.nn.softmax(jnp.where(mask, logits, -1e9), axis=-1)
    return weights * mask  # an empty set attends to nothing instead of uniformly to its padding


# Above this many logits per set ([H, M, N]), attention runs one set at a time and is recomputed in
# the backward pass: [B, H, M, N] at B=32, M=N=342 is 60 MB per pass, and memory traffic (page
# faults on fresh buffers) dominated the step on the CPU; one set's 1.9 MB stays in cache.
_PER_SET_LOGITS = 1 << 18


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array | None) -> jax.Array:
    logits = jnp.einsum("bhmc,bhnc->bhmn", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)  # [B, H, M, N]
    return jnp.einsum("bhmn,bhnc->bhmc", attention_weights(logits, key_mask), v)  # [B, H, M, C]


def scaled_dot_product(q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array | None) -> jax.Array:
    """softmax(q k^T / sqrt(C)) v per head: q [B, H, M, C], k/v [B, H, N, C], key_mask [B, N] -> [B, H, M, C]."""
    b, h, m, _ = q.shape
    if b == 1 or h * m * k.shape[2] < _PER_SET_LOGITS:
        return _attend(q, k, v, key_mask)
    mask = jnp.ones(k.shape[:1] + k.shape[2:3], bool) if key_mask is None else key_mask

    def one_set(args):
        qi, ki, vi, mi = (a[None] for a in args)
        return _attend(qi, ki, vi, mi)[0]

    return jax.lax.map(jax.checkpoint(one_set), (q, k, v, mask))


class MultiHeadAttention(hk.Module):
    """Scaled dot-product attention with H heads; query [B, M, Cq], key/value [B, N, Ck] -> [B, M, C].

    light: the official Set Transformer code's form, no output projection and the projected query
    added back (q W_q + MHA), which its MAB uses as the residual.
    """

    def __init__(self, num_heads: int, width: int, light: bool = False, name: str | None = None):
        super().__init__(name=name)
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.width = width
        self.light = light

    def __call__(self, query, key, value, key_mask=None):
        h, c = self.num_heads, self.width // self.num_heads

        def heads(x, name):  # [B, L, C_in] -> [B, H, L, C/H]
            y = hk.Linear(self.width, name=name)(x)
            return y.reshape(*y.shape[:-1], h, c).swapaxes(-2, -3)

        q, k, v = heads(query, "query"), heads(key, "key"), heads(value, "value")
        out = scaled_dot_product(q, k, v, key_mask)  # [B, H, M, C/H]
        out = out.swapaxes(-2, -3).reshape(*query.shape[:-1], self.width)  # [B, M, C]
        if self.light:
            return q.swapaxes(-2, -3).reshape(out.shape) + out
        return hk.Linear(self.width, name="out")(out)


class MAB(hk.Module):
    """Multihead attention block (Lee et al. 2019): H = LN(X + MHA(X, Y, Y)); LN(H + rFF(H)).

    x [B, M, C] attends to y [B, N, C] (y_mask [B, N]); equivariant in x, invariant in y.
    light: the block of the official code, about half the FLOPs: H = X W_q + MHA(X, Y, Y) without
    an output projection, then H + relu(H W), no layer norms.
    """

    def __init__(self, width: int, num_heads: int, light: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.width = width
        self.num_heads = num_heads
        self.light = light

    def __call__(self, x, y, y_mask=None):
        attention = MultiHeadAttention(self.num_heads, self.width, self.light)
        if self.light:
            h = attention(x, y, y, y_mask)  # [B, M, C]
            return h + jax.nn.relu(hk.Linear(self.width, name="rff")(h))  # [B, M, C]
        h = layer_norm("ln0")(x + attention(x, y, y, y_mask))  # [B, M, C]
        return layer_norm("ln1")(h + mlp([self.width, self.width], name="rff")(h))  # [B, M, C]


class SAB(hk.Module):
    """Set attention block: MAB(X, X); permutation-equivariant, O(N^2)."""

    def __init__(self, width: int, num_heads: int, light: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.mab = MAB(width, num_heads, light)

    def __call__(self, x, mask=None):
        return self.mab(x, x, mask)  # [B, N, C]


class ISAB(hk.Module):
    """Induced set attention block: MAB(X, MAB(I, X)) with m learned inducing points; O(N m)."""

    def __init__(self, width: int, num_heads: int, num_inducing: int, light: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.width = width
        self.num_heads = num_heads
        self.num_inducing = num_inducing
        self.light = light

    def __call__(self, x, mask=None):
        inducing = learned_set("inducing", self.num_inducing, self.width, x.shape[0])  # [B, m, C]
        h = MAB(self.width, self.num_heads, self.light, name="mab_in")(inducing, x, mask)  # [B, m, C]
        return MAB(self.width, self.num_heads, self.light, name="mab_out")(x, h)  # [B, N, C]


class PMA(hk.Module):
    """Pooling by multihead attention: MAB(S, rFF(X)) with k learned seeds -> [B, k, C], invariant.
    light: MAB(S, X), as the official code (no rFF before pooling)."""

    def __init__(self, width: int, num_heads: int, num_seeds: int, light: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.width = width
        self.num_heads = num_heads
        self.num_seeds = num_seeds
        self.light = light

    def __call__(self, x, mask=None):
        seeds = learned_set("seeds", self.num_seeds, self.width, x.shape[0])  # [B, k, C]
        features = x if self.light else mlp([self.width, self.width], name="rff")(x)  # [B, N, C]
        return MAB(self.width, self.num_heads, self.light)(seeds, features, mask)  # [B, k, C]


def fspool_weights(params: jax.Array, sizes: jax.Array, n: int) -> jax.Array:
    """FSPool's piecewise-linear weights (Zhang et al. 2019) at the relative ranks of n sorted slots.

    params [C, P + 1] (value at each of P + 1 knots on [0, 1]); sizes [B] (float: soft sizes work);
    returns [B, n, C], 0 for ranks beyond the set's size.
    """
    pieces = params.shape[1] - 1
    ratio = jnp.arange(n, dtype=params.dtype)[None, :] / jnp.maximum(sizes - 1.0, 1.0)[:, None]  # [B, n]
    inside = ratio <= 1.0
    position = jnp.clip(ratio, 0.0, 1.0) * pieces
    left = jnp.clip(jnp.floor(position), 0, pieces - 1).astype(jnp.int32)  # [B, n]
    frac = (position - left)[..., None]  # [B, n, 1]
    w = (1.0 - frac) * params.T[left] + frac * params.T[left + 1]  # [B, n, C]
    return w * inside[..., None]


class FSPool(hk.Module):
    """Featurewise sort pooling: sort each channel over the set, weighted sum by relative rank.

    x [B, N, C], valid [B, N] bool (rows that may rank), sizes [B] float (the set's size; may be soft,
    as in DSPN's presence-weighted sets) -> [B, C]; permutation-invariant.
    """

    def __init__(self, pieces: int = 20, name: str | None = None):
        super().__init__(name=name)
        self.pieces = pieces

    def __call__(self, x, valid, sizes):
        params = hk.get_parameter("weights", [x.shape[-1], self.pieces + 1], init=hk.initializers.RandomNormal())
        # Descending order with invalid rows last (as zeros): sort keys -x with invalid rows at +inf.
        perm, rank = sort_order(jnp.where(valid[..., None], -x, jnp.inf), axis=1)
        ranked = permute(jnp.where(valid[..., None], x, 0.0), perm, rank, 1)  # [B, N, C]
        return jnp.sum(ranked * fspool_weights(params, sizes, x.shape[1]), axis=1)  # [B, C]


def masked_pool(x: jax.Array, mask: jax.Array, kind: str) -> jax.Array:
    """sum | mean | max of x [B, N, C] over the real rows (mask [B, N]) -> [B, C]; an empty set gives 0."""
    m = mask[..., None]
    if kind == "sum":
        return jnp.sum(jnp.where(m, x, 0.0), axis=1)
    count = jnp.sum(mask, axis=1, keepdims=True)  # [B, 1]
    if kind == "mean":
        return jnp.sum(jnp.where(m, x, 0.0), axis=1) / jnp.maximum(count, 1)
    if kind == "max":
        return jnp.where(count > 0, jnp.max(jnp.where(m, x, -jnp.inf), axis=1), 0.0)
    raise ValueError(f"unknown pooling {kind!r}")
