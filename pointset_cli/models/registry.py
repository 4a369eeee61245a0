"""Names to (frozen config class, build function): encoders, decoders, whole models and set losses.

A module registers each of its models with `@register(kind, name, ConfigCls, "one line", ...)` over
its `build` factory; `get(kind, name)` looks it up and fails with the valid names and a "did you
mean". The built-in names and the modules that register them are listed in `models/builtins.py`, so
help texts can name them without importing JAX; the modules are imported on the first look-up.

Kinds and their build signatures:
- encoder: `build(cfg, latent_dim) -> EncoderBuild` (a set -> z [B, K] module factory and its tokens);
- decoder: `build(cfg, data, latent_dim, tokens) -> module factory` whose modules satisfy
  `models.decoder.Decoder`; registered with `cardinality` (fixed | presence | size) and the
  `encoder` it pairs with by default (plus that encoder's `encoder_options` in the paper);
- likelihood (point-process densities) and adversarial (GANs): `build(model_cfg, data, cfg) ->
  SetModel`, a whole model that trains and samples by itself (those registered `latent=True` also
  take `make_encoder=`, an encoder's module factory, and become VAEs);
- loss: `fn(cfg, points, mask, presence, target, target_mask, unordered_presence) -> [B]`, the set loss
  of `ModelConfig.loss` (config_cls is None).
Every encoder, decoder and whole model also registers `tiny`: options that make it small enough to
compile and train in seconds, which the test suite runs every registered model with.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pointset_cli.config import from_dict
from pointset_cli.errors import UsageError
from pointset_cli.models.builtins import BUILTINS

KINDS = ("encoder", "decoder", "likelihood", "adversarial", "loss")
MODEL_KINDS = ("decoder", "likelihood", "adversarial")  # what `--model` picks
CARDINALITIES = ("fixed", "presence", "size")
# What a user calls each kind in an error message.
_NOUNS = {"encoder": "encoder", "decoder": "model", "likelihood": "model", "adversarial": "model", "loss": "loss"}

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    config_cls: type | None
    build: Callable[..., Any]
    description: str  # one line for `pointset models`
    cardinality: str | None = None  # how the model decides its output size (decoders and whole models)
    encoder: str | None = None  # decoders: the encoder of the decoder's paper (used when none is given)
    encoder_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # ... with its paper options
    latent: bool = False  # whole models: can be conditioned on an encoder's latent (a VAE)
    # decoders: the module takes `given_sizes=True` from assemble when the latent carries the size
    given_sizes: bool = False
    tiny: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # options for a seconds-long test model


_ENTRIES: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_LOADED: set[str] = set()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r} (kinds: {', '.join(KINDS)})")


def register(kind: str, name: str, config_cls: type | None, description: str, **facts: Any) -> Callable[[F], F]:
    """Decorator registering `build` under (kind, name); a second registration of a name is a bug.

    `facts` are Entry's optional fields (cardinality, encoder, encoder_options, latent, given_sizes, tiny).
    """
    _check_kind(kind)
    if kind == "decoder" and (facts.get("cardinality") not in CARDINALITIES or not facts.get("encoder")):
        raise ValueError(f"decoder {name!r} must register a cardinality ({', '.join(CARDINALITIES)}) and an encoder")

    def decorator(build: F) -> F:
        if name in _ENTRIES[kind]:
            raise ValueError(f"{kind} {name!r} is registered twice")
        _ENTRIES[kind][name] = Entry(kind, name, config_cls, build, description, **facts)
        return build

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registration (a model a test registered for itself)."""
    _ENTRIES[kind].pop(name, None)


def _load(kind: str) -> None:
    if kind in _LOADED:
        return
    for name, module in BUILTINS[kind].items():
        importlib.import_module(f"pointset_cli.models.{module}")
        if name not in _ENTRIES[kind]:
            raise ValueError(f"models/builtins.py lists {kind} {name!r} in {module}.py, which does not register it")
    _LOADED.add(kind)


def names(kind: str) -> list[str]:
    """Registered names of `kind`: the built-ins in their listed order, then any registered since."""
    _check_kind(kind)
    _load(kind)
    # A module imported directly (a test's `from ...sliced import`) registers before the listing is loaded.
    return list(BUILTINS[kind]) + [name for name in _ENTRIES[kind] if name not in BUILTINS[kind]]


def entries(kind: str) -> list[Entry]:
    return [_ENTRIES[kind][name] for name in names(kind)]


def get(kind: str | tuple[str, ...], name: str) -> Entry:
    """The entry for `name` (searched in one kind or several, in order); UsageError listing the valid
    names (and the closest one) otherwise."""
    kinds = (kind,) if isinstance(kind, str) else kind
    valid = [n for k in kinds for n in names(k)]
    for k in kinds:
        if name in _ENTRIES[k]:
            return _ENTRIES[k][name]
    close = difflib.get_close_matches(name, valid, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    raise UsageError(f"unknown {_NOUNS[kinds[0]]} '{name}'{guess} valid: {', '.join(valid)}")


def config_from_options(config_cls: type, options: Mapping[str, Any], prefix: str = "") -> Any:
    """Frozen `config_cls` from overrides, coerced to the field types (strings from `--set` work).

    Unknown keys raise UsageError naming the valid ones.
    """
    valid = [f.name for f in dataclasses.fields(config_cls)]
    for key in options:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            guess = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise UsageError(f"unknown option '{prefix}{key}'{guess} valid: {', '.join(prefix + k for k in valid)}")
    return from_dict(config_cls, dict(options), prefix=prefix)
