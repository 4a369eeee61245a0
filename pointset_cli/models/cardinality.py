"""How decoders decide their output size: presence masks, decided sizes and their loss terms.

Glossary: B batch, S output slots, D point dimension, n_max the largest size.
Modes: "fixed" (always S points), "presence" (a probability per slot, threshold 0.5), "size"
(a classifier over sizes 0..n_max). Presence is "ordered" for the RNN (a stop signal: slot t is
present iff t < n) and unordered for slot-based decoders (any n slots may be the present ones).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pointset_cli.models.decoder import Decoded
from pointset_cli.models.layers import sizes_mask
from pointset_cli.models.sorting import sort_descending, sort_order


def size_code(sizes: jax.Array) -> jax.Array:
    """[B] the latent coordinate that carries a set's size: log(1 + n), on the scale of a learned latent."""
    return jnp.log1p(sizes.astype(jnp.float32))


def sizes_of_code(code: jax.Array, n_max: int) -> jax.Array:
    """[B] int32 sizes back from size codes [B] (also sampled ones: rounded, clipped to 0..n_max)."""
    return jnp.clip(jnp.round(jnp.expm1(code)), 0, n_max).astype(jnp.int32)


def presence_mask(presence: jax.Array, sizes: jax.Array | None, ordered: bool) -> jax.Array:
    """[B, S] mask from presence [B, S]: the `sizes` most present slots (the first ones when ordered),
    or, without sizes, the slots above 0.5 (ordered: up to the first absent one)."""
    if sizes is None:
        present = presence > 0.5
        return jnp.cumprod(present, axis=1).astype(bool) if ordered else present
    if ordered:
        return sizes_mask(sizes, presence.shape[1])
    _, rank = sort_order(-presence, axis=1)  # [B, S] 0 = most present
    return rank < sizes[:, None]


def decided_sizes(out: Decoded, mode: str, ordered: bool = False) -> jax.Array:
    """[B] the size the model itself would choose (ignoring any sizes it was given)."""
    if mode == "presence":
        return jnp.sum(presence_mask(out.presence, None, ordered), axis=1)
    if mode == "size":
        return jnp.argmax(out.size_logits, axis=-1)
    return jnp.full(out.points.shape[:1], out.points.shape[1])


def presence_bce(presence: jax.Array, sizes: jax.Array, ordered: bool) -> jax.Array:
    """[B] mean BCE of presence [B, S] against "n slots present".

    Ordered: slot t should be present iff t < n. Unordered: the n most present slots should be 1 and
    the rest 0 (sorting makes the target independent of slot order).
    """
    p = presence if ordered else sort_descending(presence, axis=1)  # [B, S]
    target = sizes_mask(sizes, p.shape[1]).astype(p.dtype)
    p = jnp.clip(p, 1e-6, 1.0 - 1e-6)
    return -jnp.mean(target * jnp.log(p) + (1.0 - target) * jnp.log1p(-p), axis=1)


def size_cross_entropy(size_logits: jax.Array, sizes: jax.Array) -> jax.Array:
    """[B] cross-entropy of the size classifier [B, n_max + 1] against the true sizes [B]."""
    logp = jax.nn.log_softmax(size_logits, axis=-1)
    return -jnp.take_along_axis(logp, sizes[:, None].astype(jnp.int32), axis=1)[:, 0]

