"""Names to (frozen config class, build function): encoders, decoders, and later density models.

A module registers its model with `@register(kind, name, ConfigCls, "one line")` over its
`build(cfg, ...)` factory; `get(kind, name)` looks it up and fails with the valid names and a
"did you mean". Registration happens when the module that defines a model is imported: the
providers below are imported on the first look-up, so importing this module stays cheap.
Build signatures by kind: encoder `build(cfg, latent_dim) -> EncoderBuild`; decoder
`build(cfg, data, latent_dim, tokens) -> module factory`; density `build(model_cfg, data, cfg) -> SetModel`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pointset_cli.errors import UsageError

KINDS = ("encoder", "decoder", "density")
_PROVIDERS: dict[str, tuple[str, ...]] = {
    "encoder": ("pointset_cli.models.builtins",),
    "decoder": ("pointset_cli.models.builtins",),
    "density": ("pointset_cli.models.builtins",),
}
# What a user calls each kind in an error message (`--model` picks decoders).
_NOUNS = {"encoder": "encoder", "decoder": "model", "density": "model"}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    config_cls: type
    build: Callable[..., Any]
    description: str  # one line for `pointset models`
    info: Mapping[str, Any] = field(default_factory=dict)  # kind-specific facts (cardinality, default encoder)


_ENTRIES: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r} (kinds: {', '.join(KINDS)})")


def register(kind: str, name: str, config_cls: type, description: str, **info: Any) -> Callable[[F], F]:
    """Decorator registering `build` under (kind, name); a second registration of a name is a bug."""
    _check_kind(kind)

    def decorator(build: F) -> F:
        if name in _ENTRIES[kind]:
            raise ValueError(f"{kind} {name!r} is registered twice")
        _ENTRIES[kind][name] = Entry(kind, name, config_cls, build, description, dict(info))
        return build

    return decorator


def _load(kind: str) -> None:
    for module in _PROVIDERS[kind]:
        importlib.import_module(module)


def names(kind: str) -> list[str]:
    """Registered names of `kind`, in registration order."""
    _check_kind(kind)
    _load(kind)
    return list(_ENTRIES[kind])


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
    import dataclasses

    from pointset_cli.config import from_dict

    valid = [f.name for f in dataclasses.fields(config_cls)]
    for key in options:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            guess = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise UsageError(f"unknown option '{prefix}{key}'{guess} valid: {', '.join(prefix + k for k in valid)}")
    return from_dict(config_cls, dict(options), prefix=prefix)
