"""The built-in models and losses, one line each: name -> the module (in models/) that registers it.

Listed here rather than found by importing so that help texts name them without importing JAX;
the registry imports these modules on its first look-up and checks that each registers its names.
Adding a decoder: its own module, and one line below.
"""

BUILTINS: dict[str, dict[str, str]] = {
    "encoder": {"deepsets": "encoders", "set_transformer": "encoders"},
    "decoder": {
        "mlp": "mlp",
        "rnn": "rnn",
        "dspn": "dspn",
        "tspn": "tspn",
        "slot": "slot_attention",
        "queries": "queries",
    },
    "likelihood": {"poisson": "poisson", "setflow": "setflow"},
    "adversarial": {"gast": "gast"},
    "loss": {"chamfer": "objective", "hungarian": "objective", "sinkhorn": "objective", "chamfer_sliced": "sliced"},
}


def listed(*kinds: str) -> list[str]:
    """The built-in names of `kinds`, in order (no import of any model module)."""
    return [name for kind in kinds for name in BUILTINS[kind]]
