"""A finished run loaded for use: its config, data record, model and parameters (no dataset needed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli import config as config_mod
from pointset_cli import rundir
from pointset_cli.errors import InputError, UsageError


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    paths: rundir.RunPaths
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


def load_run(path: str | Path, warn: Callable[[str], None]) -> TrainedRun:
    """Load RUN's config, data record, model and best (else latest) parameters."""
    from pointset_cli.checkpoint import load_params
    from pointset_cli.models import build_model
    from pointset_cli.training.loop import data_spec

    paths = rundir.open_run(path)
    cfg = config_mod.load(paths.config)
    info = rundir.read_json(paths.data_info)
    if not isinstance(info, dict) or not {"dim", "n_max", "n_classes", "classes", "sizes"} <= set(info):
        raise InputError("data.json lacks the data record (dim, n_max, classes, sizes)", paths.data_info)
    model = build_model(cfg.model, data_spec(info))
    params, step = load_params(paths.checkpoints, warn)
    return TrainedRun(paths, cfg, info, model, params, step)
