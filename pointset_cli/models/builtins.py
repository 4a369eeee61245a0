"""Imports every built-in model module so that each registers itself (see registry._PROVIDERS)."""

from pointset_cli.models import (  # noqa: F401
    dspn,
    encoders,
    gast,
    mlp,
    poisson,
    queries,
    rnn,
    setflow,
    slot_attention,
    tspn,
)
