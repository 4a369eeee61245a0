"""What a built model is: the data shape it was built for and its pure functions of params.

Shapes: B batch, N points per set (padded), D point dimension, K latent size, S output slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pointset_cli.config import ModelConfig

if TYPE_CHECKING:
    from jax import Array
else:
    Array = Any


@dataclass(frozen=True)
class DataSpec:
    dim: int  # D
    n_max: int  # N: the padded set size, and the most points a decoder emits
    n_classes: int
    sizes: tuple[int, ...] = ()  # optional histogram of training set sizes (index = size)


class SetModel(NamedTuple):
    """Pure functions of haiku params (no haiku state: no batch norm anywhere)."""

    config: ModelConfig  # resolved: the encoder's name and every option (see resolve_model)
    data: DataSpec
    init: Callable[..., Any]  # (rng, batch) -> params
    loss: Callable[..., tuple[Array, dict[str, Array]]]  # (params, rng, batch) -> (scalar, scalar metrics)
    encode: Callable[..., Array]  # (params, batch) -> z [B, K]
    decode: Callable[..., tuple[Array, Array]]  # (params, rng, z [B,K], sizes [B] | None) -> (points [B,S,D], mask [B,S])
    reconstruct: Callable[..., tuple[Array, Array]]  # (params, rng, batch) -> decode(encode(batch)), own sizes
    sample: Callable[..., tuple[Array, Array]] | None = None  # whole models: (params, rng, n, labels|None)
    log_prob: Callable[..., Array] | None = None  # likelihood models: (params, batch) -> [B]
    cardinality: str = "fixed"  # the model's size decision: fixed | presence | size
    latent_width: int | None = None  # width of encode's z: K, K + 1 when z carries the size (autoencoders)
    # Set-to-set tasks: (keys [B], whole sets Batch) -> the inputs' Batch [B, N_in, D], a pure function
    # of one PRNG key per set; reconstruct(params, rng, inputs) then gives the whole sets (with
    # task_options.keep_input: the input's points, then the decoder's).
    inputs: Callable[..., Any] | None = None
    # Adversarial models: haiku module-name prefixes of parameters trained as separate players, each
    # with its own clip and optimiser state (training.optim); the rest are one more player.
    players: tuple[str, ...] = ()


def batch_shapes(data: DataSpec, batch: int = 2) -> Any:
    """A Batch of shapes only ([batch, N, D] points, [batch, N] mask, [batch] labels) for eval_shape."""
    import jax
    import jax.numpy as jnp

    from pointset_cli.data.batching import Batch

    return Batch(jax.ShapeDtypeStruct((batch, data.n_max, data.dim), jnp.float32),
                 jax.ShapeDtypeStruct((batch, data.n_max), jnp.bool_),
                 jax.ShapeDtypeStruct((batch,), jnp.int32))


def param_shapes(model: SetModel) -> Any:
    """The parameter tree `model.init` makes, as shapes only (jax.eval_shape: nothing computed)."""
    import jax

    return jax.eval_shape(model.init, jax.random.key(0), batch_shapes(model.data))
