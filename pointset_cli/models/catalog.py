"""What `pointset models` lists: every registered model with its facts and parameter count.

Parameter counts come from `jax.eval_shape` of the init functions: shapes only, nothing computed.
"""

from __future__ import annotations

import functools
import math

import haiku as hk
import jax

from pointset_cli.config import ModelConfig
from pointset_cli.models import build_model, encoder_name, registry, resolve_model
from pointset_cli.models.setmodel import DataSpec, SetModel, batch_shapes, param_shapes

# The size the counts are quoted at: MNIST digits as 2D sets (up to 342 points), 10 classes.
DEFAULT_DATA = DataSpec(dim=2, n_max=342, n_classes=10)


def _count(params) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))


def model_param_count(model: SetModel) -> int:
    """Parameters of a built model (shapes only, via eval_shape)."""
    return _count(param_shapes(model))


def encoder_param_count(name: str, latent_dim: int, data: DataSpec = DEFAULT_DATA) -> int:
    """Parameters of encoder `name` alone at its default config."""
    entry = registry.get("encoder", name)
    make = entry.build(entry.config_cls(), latent_dim).make
    init = hk.transform(lambda points, mask: make()(points, mask)).init
    batch = batch_shapes(data)
    return _count(jax.eval_shape(init, jax.random.key(0), batch.points, batch.mask))


@functools.lru_cache(maxsize=4)
def catalog(data: DataSpec = DEFAULT_DATA, with_params: bool = True) -> tuple[dict, ...]:
    """One row per registered model: name, kind, cardinality, default encoder, description and,
    `with_params`, its parameter count.

    Decoder rows count the whole autoencoder (decoder + its default encoder) at default sizes.
    Cached: tracing every model takes seconds and the answer only changes with the code.
    """
    latent_dim = ModelConfig().latent_dim
    rows = []
    for entry in [e for kind in registry.MODEL_KINDS for e in registry.entries(kind)]:
        row = _row(entry, entry.cardinality, _default_encoder(entry))
        if with_params:
            row["params"] = model_param_count(build_model(ModelConfig(name=entry.name), data))
        rows.append(row)
    for entry in registry.entries("encoder"):
        row = _row(entry, None, None)
        if with_params:
            row["params"] = encoder_param_count(entry.name, latent_dim, data)
        rows.append(row)
    return tuple(rows)


def _default_encoder(entry: registry.Entry) -> str | None:
    """The encoder a default autoencoder of `entry` uses: "own" where the decoder encodes with its own (DSPN's g)."""
    if entry.kind != "decoder":
        return entry.encoder
    return encoder_name(resolve_model(ModelConfig(name=entry.name)))


def _row(entry: registry.Entry, cardinality: str | None, encoder: str | None) -> dict:
    return {
        "name": entry.name,
        "kind": entry.kind,
        "cardinality": cardinality,
        "default_encoder": encoder,
        "description": entry.description,
    }
