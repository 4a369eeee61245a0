"""Imports every built-in model module so that each registers itself (see registry._PROVIDERS)."""

from pointset_cli.models import dspn, encoders, mlp, queries, rnn, slot_attention, tspn  # noqa: F401
