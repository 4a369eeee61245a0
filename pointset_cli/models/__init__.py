"""Set models: an encoder (set or label -> z) and a decoder (z -> set), as pure functions of params.

Importing this package does not import JAX (the run configuration imports `models.config`);
`build_model` does. Shapes: B batch, N points per set (padded), D point dimension, K latent size,
S output slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pointset_cli.models.config import ModelConfig

if TYPE_CHECKING:
    from jax import Array
else:
    Array = Any

__all__ = ["Batch", "DataSpec", "ModelConfig", "SetModel", "build_model"]


class Batch(NamedTuple):
    points: Array  # [B, N, D] float32; padding rows may hold anything
    mask: Array  # [B, N] bool, True where a point is real
    labels: Array  # [B] int32 class labels


@dataclass(frozen=True)
class DataSpec:
    dim: int  # D
    n_max: int  # N: the padded set size, and the most points a decoder emits
    n_classes: int
    sizes: tuple[int, ...] = ()  # optional histogram of training set sizes (index = size)


class SetModel(NamedTuple):
    """Pure functions of haiku params (no haiku state: no batch norm anywhere)."""

    config: ModelConfig
    data: DataSpec
    init: Callable[..., Any]  # (rng, batch) -> params
    loss: Callable[..., tuple[Array, dict[str, Array]]]  # (params, rng, batch) -> (scalar, scalar metrics)
    encode: Callable[..., Array]  # (params, batch) -> z [B, K]
    decode: Callable[..., tuple[Array, Array]]  # (params, rng, z [B,K], sizes [B] | None) -> (points [B,S,D], mask [B,S])
    reconstruct: Callable[..., tuple[Array, Array]]  # (params, rng, batch) -> decode(encode(batch)), own sizes
    sample: Callable[..., tuple[Array, Array]] | None = None  # point-process models: (params, rng, n, labels|None)
    log_prob: Callable[..., Array] | None = None  # point-process models: (params, batch) -> [B]
    cardinality: str = "fixed"  # the decoder's size decision: fixed | presence | size


def build_model(cfg: ModelConfig, data: DataSpec) -> SetModel:
    """The SetModel for `cfg` on data shaped like `data`; bad names or options raise UsageError."""
    from pointset_cli.models.assemble import assemble

    return assemble(cfg, data)
