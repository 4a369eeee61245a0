"""What every decoder returns and exposes: the contract between a decoder module and the objective.

Glossary: B batch, K latent size, S output slots, D point dimension, n_max the largest size.
A decoder is a haiku module built by its registered factory (see registry: it registers its
cardinality mode and default encoder); `assemble` checks each built module against `Decoder`.
A decoder registered with `given_sizes=True` takes `given_sizes=True` from assemble when the latent
carries the size: it is then always given the sizes (TSPN builds no size classifier; DSPN's presence
is the first n slots). A decoder with `encode_set` (`SharedEncoder`) may also encode the sets it
decodes (DSPN's g, as in the paper's autoencoder).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import jax


class Decoded(NamedTuple):
    points: jax.Array  # [B, S, D] the final set
    mask: jax.Array  # [B, S] bool: real output points (from the given sizes, or the model's own decision)
    presence: jax.Array | None = None  # [B, S] probabilities in [0, 1] (cardinality "presence")
    size_logits: jax.Array | None = None  # [B, n_max + 1] (cardinality "size")
    iterates: tuple | None = None  # DSPN: ((points [B,S,D], presence [B,S]), ...), initial set first
    aux_loss: jax.Array | None = None  # [B] a decoder's own extra term (filled from `TargetLoss`)


@runtime_checkable
class Decoder(Protocol):
    """z [B, K] (and the true sizes [B] at training time, None to let the model decide) -> Decoded.

    The output set's order carries no meaning unless `ordered`: then presence is a stop signal
    (slot t is present iff t < n, the RNN) instead of an independent decision per slot.
    """

    ordered: bool

    def __call__(self, z: jax.Array, sizes: jax.Array | None = None) -> Decoded: ...


@runtime_checkable
class SharedEncoder(Protocol):
    """Optional: a decoder whose own set encoder can encode its input (then z is reachable by decoding)."""

    def encode_set(self, points: jax.Array, mask: jax.Array) -> jax.Array:
        """points [B, N, D], mask [B, N] -> z [B, K], invariant to order and padding."""
        ...


@runtime_checkable
class TargetLoss(Protocol):
    """Optional: a decoder that adds its own term given the target set (DSPN's representation loss)."""

    def target_loss(self, z: jax.Array, points: jax.Array, mask: jax.Array) -> jax.Array:
        """z [B, K], target points [B, N, D], mask [B, N] -> [B]."""
        ...
