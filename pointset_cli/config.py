"""Run configuration: frozen dataclasses, YAML load/dump and `--set a.b=value` overrides.

Precedence, lowest first: dataclass defaults, `--config FILE.yaml`, `--set` (in order), explicit
flags. Every value is coerced to its field's declared type, so YAML's `1e-3` (a string in YAML 1.1)
and `--set optim.lr=1e-3` both become floats. Unknown keys are usage errors that list the valid ones.
Relative paths in a config file are relative to the file's folder, so a run folder can move.
No JAX here; resolving the model section (every encoder and decoder option named, see
`models.resolve_model`) needs the model registry and happens in the caller.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pointset_cli.errors import UsageError
from pointset_cli.fsutil import atomic_path


# Set-to-set tasks: the input is made from each whole shape (a partial view, a noisy copy, a
# subset) and the decoder learns to give back the whole shape (models/degrade.py).
SET_TO_SET_TASKS = ("complete", "denoise", "upsample")
TASKS = ("autoencode", "conditional", *SET_TO_SET_TASKS)
SIZE_SOURCES = ("latent", "decoder")  # model.size_from


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str = "tspn"  # a registered model (`pointset models` lists them)
    encoder: str | None = None  # a registered encoder; None = the model's paper default (resolved into the run)
    task: str = "autoencode"  # autoencode (set -> z -> set) | conditional (label -> z -> set) | complete | denoise | upsample
    latent_dim: int = 128  # K; divisible by the Set Transformer's seed count (its z is the seeds' set)
    loss: str = "chamfer"  # a registered set loss (plus the decoder's presence/size terms)
    sinkhorn_eps: float = 0.01  # loss "sinkhorn": entropic regularisation, in the cost's units
    sinkhorn_iters: int = 100  # loss "sinkhorn": updates (half of them anneal eps down)
    encoder_options: dict = dataclasses.field(default_factory=dict)  # overrides of the encoder's own Config fields
    decoder_options: dict = dataclasses.field(default_factory=dict)  # overrides of the decoder's own Config fields
    task_options: dict = dataclasses.field(default_factory=dict)  # set-to-set tasks: how inputs are made (models/degrade.py)
    presence_weight: float = 1.0  # weight of the presence BCE (decoders with cardinality "presence")
    size_weight: float = 1.0  # weight of the size cross-entropy (decoders with cardinality "size")
    # Where an autoencoder's output size comes from: "latent" (the encoder writes log(1 + n) into one
    # more latent coordinate and the decoder builds exactly that many points; the l-GMM prior then
    # learns sizes with shapes) or "decoder" (its own size classifier or presence threshold).
    # None resolves to "latent" for autoencoding decoders that decide their size, else "decoder".
    size_from: str | None = None
    # Autoencoders: the encoder sees each set minus its centroid, which travels in z beside the shape
    # code and is added back to the decoded set (attention pooling of uncentred [0, 1] digits gave
    # nearly the same z for every input). None resolves to true for autoencoding decoders.
    centre: bool | None = None
    # --task conditional with a decoder: z = [the label's embedding, a style code of this width
    # encoded from the set], so that one label samples many sets: the l-GMM prior of each class
    # draws the style (with the centroid and size). 0: z is the label's embedding alone, and every
    # sample of a label is the same set. None resolves to half the latent for conditional decoders, else 0.
    style_dim: int | None = None


@dataclasses.dataclass(frozen=True)
class DataConfig:
    path: str = ""  # dataset.h5 from `pointset prepare`
    batch_size: int = 32
    rotate_up: bool = False  # random rotation about `up_axis` (in-plane for 2D sets)
    up_axis: int = 2  # z up, as ModelNet; ignored for 2D
    jitter: float = 0.0  # std of Gaussian noise added to every real point (normalised units)
    subsample: int = 0  # keep at most this many random points of each set; 0 keeps all
    # Refuse a dataset whose largest set is bigger: batches, decoders and losses grow with it (a set
    # of 2 million points ran for minutes into 10 GB). ModelNet-style sets are 1-10k points.
    max_set_points: int = 16384


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3  # peak learning rate, reached after warm-up
    warmup_steps: int = 100
    end_lr: float = 1e-5  # cosine decay ends here at the last step
    clip_norm: float = 1.0  # global gradient-norm clip; 0 turns it off
    weight_decay: float = 0.0  # > 0 switches Adam to AdamW
    b1: float = 0.9  # Adam's first-moment decay (GANs often train better at 0.5 or 0)
    b2: float = 0.999  # Adam's second-moment decay


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int | None = None  # total optimiser steps (also after a resume); wins over epochs
    epochs: int | None = None  # used when steps is None; 10 epochs when both are None
    eval_every: int = 200  # validation loss + best checkpoint + loss-curve refresh
    log_every: int = 20  # one metrics.jsonl line; reading metrics syncs with the device
    checkpoint_every: int = 200
    max_to_keep: int = 2
    seed: int = 0
    eval_sets: int = 512  # validation sets scored at each evaluation (the first ones); 0 = all
    prior_components: int = 16  # l-GMM components fitted on training embeddings (autoencoders)
    prior_sets: int = 2048  # random training sets embedded for the l-GMM; 0 = all
    tensorboard: bool = True  # also write metrics.jsonl's rows as TensorBoard events in the run folder
    # A wall-clock budget per session (e.g. a batch job's time limit): past it, the run validates, saves
    # and stops cleanly at the next log step (exit 0; --resume continues it). None: no budget.
    max_minutes: float | None = None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    name: str = ""  # run name; the run folder defaults to runs/<name> (a new runs/<model>-N when empty)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


MAX_YAML_DEPTH = 16  # a config nests three levels; deeper is an error, not a recursion crash
MAX_YAML_CHARS = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases (`*name` can expand a few lines into gigabytes: "billion laughs") and
    nested at most MAX_YAML_DEPTH levels."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(f"aliases (*{self.peek_event().anchor}) are not allowed in a config")
        self.depth = getattr(self, "depth", 0) + 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _read_yaml(text: str) -> Any:
    """YAML text -> plain values; too long, too deep or unreadable -> yaml.YAMLError."""
    if len(text) > MAX_YAML_CHARS:
        raise yaml.YAMLError(f"longer than {MAX_YAML_CHARS:,} characters")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader without aliases
    except ValueError as err:  # an integer of more digits than Python converts
        raise yaml.YAMLError(str(err).split(";")[0]) from None


def _shown(value: Any) -> str:
    """`value` as an error message quotes it: repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """`value` (from YAML or a `--set` string) converted to the annotated type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")):
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UsageError:
                continue
        raise UsageError(f"{key}: cannot read {_shown(value)} as {tp}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise UsageError(f"{key}: {_shown(value)} is not one of {', '.join(map(str, typing.get_args(tp)))}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise UsageError(f"{key}: expected a mapping, got {_shown(value)}")
        return from_dict(tp, value, prefix=f"{key}.")
    base = origin or tp
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if base is str:
            if isinstance(value, (dict, list)):
                raise ValueError(value)
            return str(value)
        if base in (dict, Mapping):
            value = _read_yaml(value) if isinstance(value, str) else value
            if value is None:
                return {}
            if not isinstance(value, Mapping):
                raise ValueError(value)
            return dict(value)
        if base in (tuple, list):
            value = _read_yaml(value) if isinstance(value, str) else value
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return base(value)
    except yaml.YAMLError as err:
        raise UsageError(f"{key}: cannot read {_shown(value)}: {str(err).splitlines()[0]}") from None
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{key}: cannot read {_shown(value)} as {getattr(base, '__name__', base)}") from None
    return value


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a (nested) mapping; unknown keys raise UsageError naming the valid ones."""
    fields = _fields(cls)
    unknown = sorted((str(k) for k in data if k not in fields))
    if unknown:
        key = prefix + unknown[0]
        raise UsageError(  # repr keeps a key with a line break or control character on one line
            f"unknown config key {key if key.isprintable() else repr(key)} "
            f"(valid keys: {', '.join(prefix + k for k in fields)})"
        )
    return cls(**{k: _coerce(v, fields[k], prefix + k) for k, v in data.items()})


def to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict of a config dataclass (tuples as lists, for YAML)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _set_path(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _valid_key(cls: type, key: str) -> bool:
    """Check a dotted key against the dataclass tree; True when it lies inside a dict field.

    Below a dict field (e.g. model.decoder_options.n_slots) any key is allowed.
    """
    node: Any = cls
    done: list[str] = []
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            return True
        fields = _fields(node)
        if part not in fields:
            prefix = ".".join(done + [""])
            raise UsageError(f"unknown config key {key} (valid keys: {', '.join(prefix + k for k in fields)})")
        node = fields[part]
        done.append(part)
        origin = typing.get_origin(node)
        if origin in (typing.Union, types.UnionType):
            node = next(a for a in typing.get_args(node) if a is not type(None))
    if dataclasses.is_dataclass(node):
        raise UsageError(f"{key} is a section; set one of its keys ({key}.{next(iter(_fields(node)))}=...)")
    return False


def _yaml_value(key: str, text: str) -> Any:
    try:
        return _read_yaml(text)
    except yaml.YAMLError:
        raise UsageError(f"{key}: cannot read {_shown(text)}") from None


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """`["a.b=1", ...]` -> {"a.b": "1"}; a missing `=` is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {_shown(item)}")
        out[key.strip()] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file as a nested dict, with data.path made relative to the current folder."""
    path = Path(path)
    try:
        data = _read_yaml(path.read_text())
    except OSError as err:
        raise UsageError(f"cannot read config: {err.strerror or err}", path) from None
    except UnicodeDecodeError as err:
        raise UsageError(f"not UTF-8 text (byte {err.start})", path) from None
    except yaml.YAMLError as err:
        raise UsageError(f"not valid YAML: {str(err).splitlines()[0]}", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError("a config file must be a mapping of sections (data, model, optim, train)", path)
    data_path = (data.get("data") or {}).get("path") if isinstance(data.get("data"), dict) else None
    if isinstance(data_path, str) and data_path and not os.path.isabs(data_path):
        data["data"]["path"] = os.path.normpath(os.path.join(path.parent, data_path))
    return data


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def resolve(
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
    base_file: str | Path | None = None,
) -> RunConfig:
    """Defaults < `base_file` (a resumed run's config) < config file < `--set` items < explicit flags.

    `flags` maps dotted keys to values; None means "not given".
    """
    tree: dict[str, Any] = load_run_yaml(base_file) if base_file else {}
    tree = _merge(tree, load_yaml(config_file)) if config_file else tree
    overrides = list(parse_set(sets).items()) + [(k, v) for k, v in (flags or {}).items() if v is not None]
    for key, value in overrides:
        if _valid_key(RunConfig, key) and isinstance(value, str):
            value = _yaml_value(key, value)  # no declared type inside a dict: read it as YAML
        _set_path(tree, key, value)
    cfg = from_dict(RunConfig, tree)
    validate(cfg)
    if cfg.data.path and not os.path.isabs(cfg.data.path):
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=os.path.abspath(cfg.data.path)))
    return cfg


def _finite_at_least(low: float):
    return lambda v: math.isfinite(v) and v >= low


def _count(low: int):
    return lambda v: v >= low


# What each number accepts, checked when a config is resolved, so that `--print-config` refuses what
# `train` would (and before anything compiles): (dotted key, test, what the value must be).
_LIMITS = (
    ("data.batch_size", _count(1), "at least 1"),
    ("data.up_axis", lambda v: v in (0, 1, 2), "0, 1 or 2"),
    ("data.jitter", _finite_at_least(0.0), "a finite number >= 0"),
    ("data.subsample", _count(0), "0 (keep every point) or more"),
    ("data.max_set_points", _count(1), "at least 1"),
    ("optim.lr", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("optim.warmup_steps", _count(0), "0 or more"),
    ("optim.end_lr", _finite_at_least(0.0), "a finite number >= 0"),
    ("optim.clip_norm", _finite_at_least(0.0), "a finite number >= 0 (0 turns clipping off)"),
    ("optim.weight_decay", _finite_at_least(0.0), "a finite number >= 0"),
    ("train.steps", lambda v: v is None or v >= 1, "at least 1"),
    ("train.epochs", lambda v: v is None or v >= 1, "at least 1"),
    ("train.eval_every", _count(1), "at least 1"),
    ("train.log_every", _count(1), "at least 1"),
    ("train.checkpoint_every", _count(1), "at least 1"),
    ("train.max_to_keep", _count(1), "at least 1 (a run must keep a checkpoint to resume from)"),
    ("train.eval_sets", _count(0), "0 (all) or more"),
    ("train.prior_components", _count(1), "at least 1"),
    ("train.prior_sets", _count(0), "0 (all) or more"),
    ("train.max_minutes", lambda v: v is None or (math.isfinite(v) and v > 0), "a finite number > 0"),
)


def validate(cfg: RunConfig) -> None:
    """UsageError naming the first setting whose value cannot work (and the run name if it is a path)."""
    for key, ok, what in _LIMITS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not ok(value):
            raise UsageError(f"{key} must be {what} (got {_shown(value)})")
    name = cfg.name
    if name and (name in (".", "..") or "/" in name or os.sep in name or not name.isprintable()):
        raise UsageError(f"name must be a plain run name, not a path (got {_shown(name)}); use --run-dir for a folder")


def save(cfg: RunConfig, path: Path) -> None:
    """Write config.yaml with data.path relative to its folder (so the run folder can move)."""
    data = to_dict(cfg)
    if cfg.data.path:
        data["data"]["path"] = os.path.relpath(cfg.data.path, Path(path).parent.resolve())
    with atomic_path(Path(path), force=True) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))


# Options a run's config.yaml may predate, with the value that reproduces what such a run trained.
_BEFORE_OPTION = {("model", "size_from"): "decoder", ("model", "centre"): False, ("model", "style_dim"): 0}
# The same for decoder options, per model: (model name, decoder option): value.
_BEFORE_DECODER_OPTION = {("slot", "init"): "gaussian", ("dspn", "scale_by_slots"): False,
                          ("dspn", "shared_encoder"): False, ("dspn", "presence_from_size"): False}


def load_run_yaml(path: str | Path) -> dict[str, Any]:
    """A run's config.yaml as a nested dict (see load_yaml), with options it predates filled in as
    that run was trained."""
    data = load_yaml(path)
    for (section, key), value in _BEFORE_OPTION.items():
        if isinstance(data.get(section), dict):
            data[section].setdefault(key, value)
    model = data.get("model")
    for (name, key), value in _BEFORE_DECODER_OPTION.items():
        if isinstance(model, dict) and model.get("name") == name:
            options = model.setdefault("decoder_options", {})
            if isinstance(options, dict):
                options.setdefault(key, value)
    return data


def load(path: Path) -> RunConfig:
    """A run's config.yaml back as a RunConfig."""
    return from_dict(RunConfig, load_run_yaml(path))


# What a resumed run may change: its length and cadence, and where the dataset now lives.
RESUMABLE_CHANGES = ("data.path", "train.steps", "train.epochs", "train.eval_every", "train.log_every",
                     "train.checkpoint_every", "train.max_to_keep", "train.tensorboard", "train.max_minutes")


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping) and prefix.count(".") < 1:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def check_resumable(saved: RunConfig, new: RunConfig) -> None:
    """Refuse to resume a run under a config that changes what was trained, naming the differences."""
    a, b = _flat(to_dict(saved)), _flat(to_dict(new))
    diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
             if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES]
    if diffs:
        raise UsageError(f"the run was trained with a different config ({'; '.join(diffs)}); "
                         "use --overwrite or a new --run-dir")
