"""Pure jitted steps: `train_step(state, batch) -> (state, metrics)` and the evaluation loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from pointset_cli.training.state import TrainState


def make_train_step(model: Any, optimizer: optax.GradientTransformation) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """One optimiser step on `model.loss`; metrics are the loss, the model's own terms and the grad norm."""

    def train_step(state: TrainState, batch: Any) -> tuple[TrainState, dict]:
        rng, key = jax.random.split(state.rng)
        (loss, aux), grads = jax.value_and_grad(model.loss, has_aux=True)(state.params, key, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **aux, "grad_norm": optax.global_norm(grads)}
        return TrainState(params, opt_state, rng, state.step + 1), metrics

    return jax.jit(train_step)


def make_eval_step(model: Any) -> Callable[[Any, Any, jax.Array], dict]:
    """`(params, batch, key) -> metrics` of `model.loss` without gradients."""

    def eval_step(params: Any, batch: Any, key: jax.Array) -> dict:
        loss, aux = model.loss(params, key, batch)
        return {"loss": loss, **aux}

    return jax.jit(eval_step)
