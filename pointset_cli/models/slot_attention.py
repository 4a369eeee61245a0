"""Slot Attention decoder (Locatello et al. 2020): slots compete for the latent set, one point each.

Glossary: B batch, K latent size, T latent tokens (the inputs), S = n_max slots, C slot width,
D point dimension.
Slots start from one learned vector each (init "learned", the default) or, as in the paper, i.i.d.
from a learned Gaussian (init "gaussian"); for a few iterations each slot attends to the inputs
with the softmax taken over the *slots* (they compete for each input), a weighted mean over inputs
updates each slot through a GRU and a residual MLP. Each slot then emits a point and a presence
probability. Equivariant in the slots, invariant in the inputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.errors import UsageError
from pointset_cli.models import registry
from pointset_cli.models.cardinality import presence_mask
from pointset_cli.models.decoder import Decoded
from pointset_cli.models.layers import latent_set, learned_set, layer_norm, mlp


@dataclass(frozen=True)
class SlotDecoderConfig:
    width: int = 64  # C, the paper's slot size
    iterations: int = 3  # the paper's setting
    mlp_hidden: int = 128  # the paper's residual MLP width
    head_hidden: tuple[int, ...] = (64,)  # per-slot MLP to (point, presence logit)
    # "learned": one learned start per slot, as DETR's queries. With the paper's "gaussian" draws
    # the slots' reconstructions ignored their input (0.2% of MNIST test digits nearest their own
    # input); learned, the decoder beats one fixed set in the learning test (BENCHMARKS.md).
    init: str = "learned"


INITS = ("learned", "gaussian")


class SlotAttention(hk.Module):
    """slots [B, S, C] attend to inputs [B, T, Ci] (mask [B, T]) -> slots [B, S, C]."""

    def __init__(self, width: int, iterations: int, mlp_hidden: int, eps: float = 1e-8, name: str | None = None):
        super().__init__(name=name)
        self.width = width
        self.iterations = iterations
        self.mlp_hidden = mlp_hidden
        self.eps = eps

    def __call__(self, slots, inputs, input_mask=None):
        inputs = layer_norm("ln_inputs")(inputs)
        k = hk.Linear(self.width, with_bias=False, name="key")(inputs)  # [B, T, C]
        v = hk.Linear(self.width, with_bias=False, name="value")(inputs)  # [B, T, C]
        to_q = hk.Linear(self.width, with_bias=False, name="query")
        ln_slots, ln_mlp = layer_norm("ln_slots"), layer_norm("ln_mlp")
        gru = hk.GRU(self.width)
        update = mlp([self.mlp_hidden, self.width], name="mlp")
        b, s, c = slots.shape
        for _ in range(self.iterations):
            q = to_q(ln_slots(slots))  # [B, S, C]
            logits = jnp.einsum("bsc,btc->bst", q, k) / jnp.sqrt(c)  # [B, S, T]
            attn = jax.nn.softmax(logits, axis=1) + self.eps  # over slots: competition
            if input_mask is not None:
                attn = attn * input_mask[:, None, :]
            attn = attn / jnp.sum(attn, axis=2, keepdims=True)  # weighted mean over inputs
            updates = jnp.einsum("bst,btc->bsc", attn, v)  # [B, S, C]
            h, _ = gru(updates.reshape(b * s, c), slots.reshape(b * s, c))
            slots = h.reshape(b, s, c)
            slots = slots + update(ln_mlp(slots))  # [B, S, C]
        return slots


class SlotDecoder(hk.Module):
    """z [B, K] -> points [B, S, D], presence [B, S]."""

    ordered = False

    def __init__(self, num_points: int, dim: int, tokens: int, width: int, iterations: int, mlp_hidden: int,
                 head_hidden, init: str, name: str | None = None):
        super().__init__(name=name)
        self.init = init
        self.num_points = num_points
        self.dim = dim
        self.tokens = tokens
        self.head_hidden = tuple(head_hidden)
        self.slot_attention = SlotAttention(width, iterations, mlp_hidden)

    def __call__(self, z, sizes=None):
        slots = self.slot_attention(self._initial_slots(z.shape[0], z.dtype), latent_set(z, self.tokens))  # [B, S, C]
        out = mlp((*self.head_hidden, self.dim + 1), name="head")(slots)  # [B, S, D + 1]
        presence = jax.nn.sigmoid(out[..., -1])  # [B, S]
        return Decoded(out[..., :-1], presence_mask(presence, sizes, ordered=False), presence=presence)

    def _initial_slots(self, batch: int, dtype) -> jax.Array:
        """[B, S, C] the slots before the first iteration."""
        c = self.slot_attention.width
        if self.init == "learned":
            return learned_set("slots", self.num_points, c, batch, hk.initializers.TruncatedNormal(1.0))
        mu = hk.get_parameter("slots_mu", [c], init=hk.initializers.VarianceScaling(1.0, "fan_avg", "uniform"))
        log_sigma = hk.get_parameter("slots_log_sigma", [c], init=jnp.zeros)
        noise = jax.random.normal(hk.next_rng_key(), (batch, self.num_points, c), dtype)
        return mu + jnp.exp(log_sigma) * noise


@registry.register(
    "decoder", "slot", SlotDecoderConfig, "Slot Attention: slots compete for the latent set (presence)",
    cardinality="presence", encoder="set_transformer",
    tiny={"width": 16, "iterations": 2, "mlp_hidden": 16, "head_hidden": (16,)},
)
def build(cfg: SlotDecoderConfig, data, latent_dim: int, tokens: int):
    if cfg.init not in INITS:
        raise UsageError(f"unknown slot init '{cfg.init}'; valid: {', '.join(INITS)}")
    return functools.partial(
        SlotDecoder, data.n_max, data.dim, tokens, cfg.width, cfg.iterations, cfg.mlp_hidden, cfg.head_hidden,
        cfg.init, name="decoder",
    )
