"""Pure jitted steps: `train_step(state, batch) -> (state, metrics)` and the evaluation loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from pointset_cli.models.degrade import index_keys
from pointset_cli.training.state import TrainState


def _jit(fn: Callable, dp: Any, n_after_batch: int = 0) -> Callable:
    """jit of `fn(state_or_params, batch, *rest)`: the batch split over `dp`'s mesh, all else replicated."""
    if dp is None:
        return jax.jit(fn)
    rest = (dp.replicated,) * n_after_batch
    return jax.jit(fn, in_shardings=(dp.replicated, dp.batch_sharding, *rest), out_shardings=dp.replicated)


def make_train_step(
    model: Any, optimizer: optax.GradientTransformation, dp: Any = None
) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """One optimiser step on `model.loss`; metrics are the loss, the model's own terms and the grad norm.

    With `dp` (training.parallel.DataParallel) the batch [B, ...] is split over its devices; the
    loss is still the mean over the whole batch, so the step equals the one-device step up to rounding.
    """

    def train_step(state: TrainState, batch: Any) -> tuple[TrainState, dict]:
        rng, key = jax.random.split(state.rng)
        (loss, aux), grads = jax.value_and_grad(model.loss, has_aux=True)(state.params, key, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **aux, "grad_norm": optax.global_norm(grads)}
        return TrainState(params, opt_state, rng, state.step + 1), metrics

    return _jit(train_step, dp)


def make_eval_step(model: Any, dp: Any = None) -> Callable[[Any, Any, jax.Array], dict]:
    """`(params, (batch, index), key) -> metrics` of `model.loss` without gradients (batch split as in
    training). index [B]: the sets' dataset indices; a set-to-set task's inputs are made from them
    as `eval` makes them (models.degrade.index_keys), whatever the batch around a set."""

    def eval_step(params: Any, indexed: Any, key: jax.Array) -> dict:
        batch, index = indexed
        if model.inputs is None:
            loss, aux = model.loss(params, key, batch)
        else:
            loss, aux = model.loss(params, key, batch, input_keys=index_keys(index))
        return {"loss": loss, **aux}

    return _jit(eval_step, dp, n_after_batch=1)
