"""Which encoder encodes a model's sets: a named one, or the decoder's own (DSPN's g). No JAX here,
so run summaries can say it without importing the models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointset_cli.config import ModelConfig


def shares_encoder(task: str, decoder_options: Mapping[str, Any]) -> bool:
    """Whether the decoder encodes its input with its own set encoder (DSPN's g, as in the paper's
    autoencoder): only when autoencoding, where z is an encoding of the very set it decodes."""
    return task == "autoencode" and bool(decoder_options.get("shared_encoder", False))


def encoder_name(cfg: ModelConfig) -> str | None:
    """What encodes a resolved config's sets: the encoder's name, "own" where the decoder does
    (`shares_encoder`), None where nothing does."""
    return cfg.encoder or ("own" if shares_encoder(cfg.task, cfg.decoder_options) else None)
