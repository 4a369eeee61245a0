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
import numpy as np

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
    """Softmax over keys (last axis) of logits [B, ..., N]; masked keys get exactly 0 weight."""
    if key_mask is None:
        return jax.nn.softmax(logits, axis=-1)
    # key_mask [B, N] -> broadcast over the middle axes (heads, queries): [B, 1, ..., 1, N]
    mask = key_mask.reshape(key_mask.shape[:1] + (1,) * (logits.ndim - 2) + key_mask.shape[1:])
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


def _head_channels(heads: int, width: int) -> np.ndarray:
    """[H, C] float32 constant: 1 where channel c belongs to head h (the h-th block of C/H channels)."""
    return (np.arange(width)[None, :] // (width // heads) == np.arange(heads)[:, None]).astype(np.float32)


def _spread_heads(x: jax.Array, heads: int) -> jax.Array:
    """[B, L, C] -> [B, H * L, C]: row (h, l) is row l with every channel outside head h zeroed."""
    b, rows, width = x.shape
    return (x[:, None] * _head_channels(heads, width)[None, :, None, :]).reshape(b, heads * rows, width)


def _unspread_heads(x: jax.Array, heads: int) -> jax.Array:
    """[B, H * M, C] -> [B, M, C]: each channel from the rows of its own head."""
    b, rows, width = x.shape
    return jnp.sum(x.reshape(b, heads, rows // heads, width) * _head_channels(heads, width)[None, :, None, :], axis=1)


def _bmm(a: jax.Array, b: jax.Array, a_axis: int, b_axis: int) -> jax.Array:
    """Product batched over axis 0, contracting a's `a_axis` with b's `b_axis`: [B, a free, b free]."""
    return jax.lax.dot_general(a, b, (((a_axis,), (b_axis,)), ((0,), (0,))))


def _few_queries(heads: int, m: int, n: int, width: int) -> bool:
    """Whether H * M query rows fit in the width (inducing points, seeds), so attention can run in
    the keys' input space (`_attend_few_queries`) at less cost than projecting N keys and values."""
    return heads * m <= width and m <= n


def _attend_few_queries(q, key, value, key_weights, value_weights, heads: int, key_mask):
    """q [B, M, C] (projected), key [B, N, Ck] and value [B, N, Cv] as given, not projected;
    key_weights ([Ck, C], [C]) and value_weights ([Cv, C], [C]) -> [B, M, C].

    The same attention in another order: each head's query is mapped back through the key weights
    (q_h W_k,h^T, [B, H * M, Ck]) and the weights pool the raw values before W_v, so the [B, N, C]
    projections of keys and values are never formed (H * M <= C rows instead of N). The key bias
    adds one constant per query and head, which the softmax ignores; the value bias comes back
    weighted by each row's total weight (1, or 0 for an empty set).
    """
    (w_k, _), (w_v, b_v) = key_weights, value_weights
    spread = _spread_heads(q, heads) * float(1 / np.sqrt(q.shape[2] // heads))  # [B, H * M, C]
    logits = _bmm(spread @ w_k.T, key, 2, 2)  # [B, H * M, N]
    weights = attention_weights(logits, key_mask)  # [B, H * M, N]
    out = _bmm(weights, value, 2, 1) @ w_v + weights.sum(-1, keepdims=True) * b_v  # [B, H * M, C]
    return _unspread_heads(out, heads)  # [B, M, C]


def _attend_few_keys(q, k, v, heads: int, key_mask):
    """k/v [B, N, C] with H * N <= C; q [B, M, C] -> [B, M, C], with head-spread keys and values
    ([B, H * N, C], block diagonal in channels) so that q's [B, M, C] is never split into heads."""
    b, m, width = q.shape
    n = k.shape[1]
    logits = _bmm(q, _spread_heads(k, heads), 2, 2) * float(1 / np.sqrt(width // heads))  # [B, M, H * N]
    weights = attention_weights(logits.reshape(b, m, heads, n), key_mask).reshape(b, m, heads * n)
    return _bmm(weights, _spread_heads(v, heads), 2, 1)  # [B, M, C]


def _attend_few_keys_projecting(query, k, v, query_weights, out_weights, heads: int, key_mask):
    """query [B, M, Cq] as given, not projected; k/v [B, N, C] (projected) with H * N <= C;
    query_weights ([Cq, C], [C]) and out_weights ([C, C], [C]) -> [B, M, C], the block's output
    projection included.

    The query projection moves onto the keys (q W_q k^T = q (k W_q^T)^T, [B, H * N, Cq]) and the
    output projection onto the values (softmax (v W_o), [B, H * N, C]), so the [B, M, C] products
    with W_q and W_o of the M queries are never formed.
    """
    b, m, _ = query.shape
    n, width = k.shape[1:]
    (w_q, b_q), (w_o, b_o) = query_weights, out_weights
    spread = _spread_heads(k, heads) * float(1 / np.sqrt(width // heads))  # [B, H * N, C]
    logits = _bmm(query, spread @ w_q.T, 2, 2) + (spread @ b_q)[:, None, :]  # [B, M, H * N]
    weights = attention_weights(logits.reshape(b, m, heads, n), key_mask).reshape(b, m, heads * n)
    return _bmm(weights, _spread_heads(v, heads) @ w_o, 2, 1) + b_o  # [B, M, C]


def multihead_attention(q: jax.Array, k: jax.Array, v: jax.Array, heads: int,
                        key_mask: jax.Array | None) -> jax.Array:
    """Attention with H heads on projected q [B, M, C], k/v [B, N, C], key_mask [B, N] -> [B, M, C].

    Head h attends with channels [h C/H, (h + 1) C/H). With few keys (H N <= C, as inducing points
    and seeds) the heads are spread over the keys' rows rather than splitting the queries' large
    [B, M, C] into [B, H, M, C/H], which XLA's CPU backend copies there and back.
    """
    width = q.shape[2]
    if heads * k.shape[1] <= width:
        return _attend_few_keys(q, k, v, heads, key_mask)

    def split(x):  # [B, L, C] -> [B, H, L, C/H]
        return x.reshape(*x.shape[:-1], heads, width // heads).swapaxes(-2, -3)

    out = scaled_dot_product(split(q), split(k), split(v), key_mask)  # [B, H, M, C/H]
    return out.swapaxes(-2, -3).reshape(q.shape)


class _Projection(hk.Linear):
    """hk.Linear that can also hand out its parameters (the same names and initialisers), so that
    attention may apply them in another order."""

    def weights(self, input_size: int, dtype) -> tuple[jax.Array, jax.Array]:
        """([input_size, out], [out]): the parameters a call on [..., input_size] would use."""
        init = self.w_init or hk.initializers.TruncatedNormal(stddev=1.0 / np.sqrt(input_size))
        w = hk.get_parameter("w", [input_size, self.output_size], dtype, init=init)
        return w, hk.get_parameter("b", [self.output_size], dtype, init=self.b_init)


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
        h, width = self.num_heads, self.width
        queries, keys, values = (_Projection(width, name=name) for name in ("query", "key", "value"))
        m, n = query.shape[1], key.shape[1]
        if not self.light and h * n <= width < h * m:  # few keys, many queries: W_q and W_o go to the keys
            # parameters are made in the order query, key, value, out, as on the other paths
            query_weights = queries.weights(query.shape[-1], query.dtype)
            k, v = keys(key), values(value)  # [B, N, C]
            out_weights = _Projection(width, name="out").weights(width, query.dtype)
            return _attend_few_keys_projecting(query, k, v, query_weights, out_weights, h, key_mask)
        q = queries(query)  # [B, M, C]
        if _few_queries(h, m, n, width):
            out = _attend_few_queries(q, key, value, keys.weights(key.shape[-1], key.dtype),
                                      values.weights(value.shape[-1], value.dtype), h, key_mask)
        else:
            out = multihead_attention(q, keys(key), values(value), h, key_mask)  # [B, M, C]
        if self.light:
            return q + out
        return hk.Linear(width, name="out")(out)


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
