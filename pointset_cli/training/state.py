"""The training state: everything a resume needs besides the step-addressed data order."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
    params: Any  # haiku params (nested dict of arrays)
    opt_state: Any  # optax state of the chain in training.optim
    rng: jax.Array  # raw uint32 key [2]; split once per step
    step: jax.Array  # int32 scalar: optimiser steps taken


def init_state(model: Any, optimizer: optax.GradientTransformation, seed: int, batch: Any) -> TrainState:
    """Fresh parameters from `seed` (shapes taken from `batch`), optimiser state and step 0."""

    def fresh(seed: jax.Array, batch: Any) -> TrainState:
        init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
        params = model.init(init_key, batch)
        return TrainState(params, optimizer.init(params), train_key, jnp.zeros((), jnp.int32))

    # One jitted program, which the persistent compilation cache keeps: run eagerly, every op of
    # the model and each optimiser state's zeros was a small compilation of its own, on every start.
    return jax.jit(fresh)(jnp.asarray(seed, jnp.int32), batch)
