"""RNN decoder: an LSTM/GRU core emits one point and one presence (stop) probability per step.

Glossary: B batch, K latent size, S = n_max steps (slots), D point dimension, C core width.
The core starts from a state computed from z, reads z and its own previous point at every step,
and is unrolled for S steps; the set is the points before the first absent one (presence < 0.5).
Not permutation-equivariant: it imposes an order the loss must forgive (Chamfer/Hungarian do).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import haiku as hk
import jax
import jax.numpy as jnp

from pointset_cli.models import registry
from pointset_cli.errors import UsageError
from pointset_cli.models.cardinality import presence_mask
from pointset_cli.models.decoder import Decoded

CELLS = ("lstm", "gru")


@dataclass(frozen=True)
class RNNDecoderConfig:
    cell: str = "lstm"  # lstm | gru
    width: int = 128  # C: state size; a small core keeps the 342-step unroll affordable on CPU


class _FeedbackCore(hk.RNNCore):
    """One step: (z [B, K], state) -> ((point [B, D], presence logit [B]), state); the point is fed back."""

    def __init__(self, cell: hk.RNNCore, dim: int, name: str | None = None):
        super().__init__(name=name)
        self.cell = cell
        self.dim = dim

    def __call__(self, z, state):
        cell_state, previous = state
        h, cell_state = self.cell(jnp.concatenate([z, previous], axis=-1), cell_state)  # [B, C]
        point = hk.Linear(self.dim, name="point")(h)  # [B, D]
        logit = hk.Linear(1, name="presence")(h)[:, 0]  # [B]
        return (point, logit), (cell_state, point)

    def initial_state(self, batch_size):
        raise NotImplementedError("the state is computed from z")


class RNNDecoder(hk.Module):
    """z [B, K] -> points [B, S, D] and presence [B, S] (ordered: a stop signal)."""

    ordered = True

    def __init__(self, num_points: int, dim: int, cell: str, width: int, name: str | None = None):
        super().__init__(name=name)
        self.num_points = num_points
        self.dim = dim
        self.cell = cell
        self.width = width

    def _initial_state(self, z):
        h = jnp.tanh(hk.Linear(self.width, name="init_h")(z))  # [B, C]
        if self.cell == "gru":
            return hk.GRU(self.width), h
        c = hk.Linear(self.width, name="init_c")(z)  # [B, C]
        return hk.LSTM(self.width), hk.LSTMState(hidden=h, cell=c)

    def __call__(self, z, sizes=None):
        cell, cell_state = self._initial_state(z)
        core = _FeedbackCore(cell, self.dim)
        inputs = jnp.broadcast_to(z, (self.num_points, *z.shape))  # [S, B, K] time-major
        start = jnp.zeros((z.shape[0], self.dim), z.dtype)
        (points, logits), _ = hk.dynamic_unroll(core, inputs, (cell_state, start))  # [S, B, D], [S, B]
        points = points.swapaxes(0, 1)  # [B, S, D]
        presence = jax.nn.sigmoid(logits.T)  # [B, S]
        return Decoded(points, presence_mask(presence, sizes, ordered=True), presence=presence)


@registry.register(
    "decoder", "rnn", RNNDecoderConfig, "RNN: an LSTM/GRU emits one point and a stop probability per step",
    cardinality="presence", encoder="deepsets",
    tiny={"width": 16},
)
def build(cfg: RNNDecoderConfig, data, latent_dim: int, tokens: int):
    if cfg.cell not in CELLS:
        raise UsageError(f"unknown RNN cell '{cfg.cell}'; valid: {', '.join(CELLS)}")
    return functools.partial(RNNDecoder, data.n_max, data.dim, cfg.cell, cfg.width, name="decoder")
