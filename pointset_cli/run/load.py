"""A trained run loaded for use: its config, data record, model and parameters (no dataset needed)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli import config as config_mod
from pointset_cli.errors import InputError, UsageError
from pointset_cli.run import folder
from pointset_cli.run.record import RECORD_KEYS, data_spec


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    paths: folder.RunPaths
    config: config_mod.RunConfig
    info: dict[str, Any]  # data.json
    model: Any  # SetModel
    params: Any
    step: int

    @property
    def dataset_path(self) -> Path:
        """The dataset the run was trained on (recorded relative to the run folder)."""
        return (self.paths.root / self.info["dataset"]).resolve()

    def label_index(self, label: str | int) -> int:
        """A class given by name or index -> its index; unknown -> usage error listing the classes."""
        classes = self.info["classes"]
        if str(label) in classes:
            return classes.index(str(label))
        if str(label).lstrip("-").isdigit() and 0 <= int(label) < len(classes):
            return int(label)
        raise UsageError(f"unknown label {label!r} (classes: {', '.join(classes)})")

    def denormalize_generated(self, points: np.ndarray) -> np.ndarray:
        """Generated sets [B, S, D] -> source units with the mean training frame (float64)."""
        return np.asarray(points, np.float64) * self.info["scale"] + np.asarray(self.info["center"])


@contextlib.contextmanager
def training_data(run: Any, ds: Any) -> Iterator[Any]:
    """The open SetDataset whose train split `run` (anything with a `dataset_path`) learnt from: its
    own dataset when that is found and holds training sets, else `ds` (an open SetDataset), left open."""
    from pointset_cli.data.schema import SetDataset

    own = run.dataset_path
    if not own.exists() or own.resolve() == Path(ds.path).resolve():
        yield ds
        return
    with SetDataset(own) as own_ds:
        yield own_ds if len(own_ds.indices("train")) else ds


def _unrecorded(given: Any, resolved: Any) -> str:
    """What `resolved` fills in that a run's model config left out, in words."""
    parts = [] if given.encoder == resolved.encoder else ["the encoder's name"]
    options = [f"{section}.{key}" for section in ("encoder_options", "decoder_options")
               for key in getattr(resolved, section) if key not in getattr(given, section)]
    if options:
        parts.append(f"{len(options)} model options ({', '.join(options[:3])}{', ...' if len(options) > 3 else ''})")
    return " and ".join(parts) or "the model's options as resolved today"


def load_run(path: str | Path, warn: Callable[[str], None], checkpoint: str | int | None = None) -> TrainedRun:
    """Load RUN's config, data record, model and the parameters of `checkpoint` ("best", "latest",
    a step; None: best, else latest; see checkpoints.load_params).

    A config.yaml that does not name every model option (written before configs recorded the
    resolved model, or before an option existed) gets the code's defaults, with one warning line.
    """
    from pointset_cli.models import build_model, resolve_model
    from pointset_cli.models.setmodel import param_shapes
    from pointset_cli.run.checkpoints import load_params, mismatch

    paths = folder.open_run(path)
    cfg = config_mod.load(paths.config)
    info = folder.read_json(paths.data_info)
    if not isinstance(info, dict) or not RECORD_KEYS <= set(info):
        raise InputError("data.json lacks the data record (dim, n_max, classes, sizes)", paths.data_info)
    resolved = resolve_model(cfg.model)
    if config_mod.to_dict(resolved) != config_mod.to_dict(cfg.model):  # YAML gives lists for tuples
        warn(f"warning: {paths.config} does not record {_unrecorded(cfg.model, resolved)} "
             "(an older pointset wrote it); using today's defaults")
        cfg = dataclasses.replace(cfg, model=resolved)
    model = build_model(cfg.model, data_spec(info))
    params, step = load_params(paths.checkpoints, warn, checkpoint)
    difference = mismatch(param_shapes(model), params)
    if difference is not None:
        raise InputError(f"checkpoint is not of the model config.yaml describes ({difference})", paths.checkpoints)
    return TrainedRun(paths, cfg, info, model, params, step)
