"""Set models: an encoder (set or label -> z) and a decoder (z -> set), as pure functions of params.

Importing this package does not import JAX; `resolve_model` and `build_model` do (they import the
registered model modules). Shapes: B batch, N points per set (padded), D point dimension, K latent
size, S output slots. Batches are `data.batching.Batch` (points [B, N, D], mask [B, N], labels [B]).
"""

from __future__ import annotations

from pointset_cli.config import ModelConfig
from pointset_cli.models.encoder_choice import encoder_name, shares_encoder
from pointset_cli.models.setmodel import DataSpec, SetModel

__all__ = ["DataSpec", "ModelConfig", "SetModel", "build_model", "encoder_name", "resolve_model", "shares_encoder"]


def resolve_model(cfg: ModelConfig) -> ModelConfig:
    """`cfg` with the encoder named and every encoder and decoder option filled in; UsageError for
    bad names, options or values. What a run records, so a changed default never changes an old run."""
    from pointset_cli.models.assemble import resolve

    return resolve(cfg)


def build_model(cfg: ModelConfig, data: DataSpec) -> SetModel:
    """The SetModel for `cfg` (resolved first) on data shaped like `data`; bad names or options raise UsageError."""
    from pointset_cli.models.assemble import assemble

    return assemble(cfg, data)
