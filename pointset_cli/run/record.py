"""The run's record of its data (RUN/data.json): what sampling and scoring need without the dataset.

Shapes: D point dimension, n_max the largest set, C classes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.models.setmodel import DataSpec

RECORD_KEYS = {"dim", "n_max", "n_classes", "classes", "sizes"}


def data_spec(info: dict[str, Any]) -> DataSpec:
    """What the models need to know of the data, from a data record."""
    return DataSpec(dim=info["dim"], n_max=info["n_max"], n_classes=info["n_classes"], sizes=tuple(info["sizes"]))


def data_info(ds: Any, train_idx: np.ndarray, run_root: Path) -> dict[str, Any]:
    """What the run keeps of its data (data.json): sampling must work without the dataset file."""
    sizes = ds.sizes("train")
    # Source units = points * scale + centre: map 0 and 1 back to read each set's frame.
    zero = ds.denormalize(np.zeros((len(train_idx), 1, ds.dim)), train_idx)[:, 0]
    unit = ds.denormalize(np.ones((len(train_idx), 1, ds.dim)), train_idx)[:, 0] - zero
    return {
        "dataset": os.path.relpath(Path(ds.path).resolve(), run_root.resolve()),
        "dim": ds.dim,
        "n_max": ds.n_max,
        "n_classes": len(ds.classes),
        "classes": list(ds.classes),
        "sizes": np.bincount(sizes, minlength=ds.n_max + 1).tolist(),
        "normalization": ds.normalization,
        # Generated sets belong to no source set: --denormalize maps them with the mean training frame.
        "center": zero.mean(0).tolist(),
        "scale": float(unit[:, 0].mean()),
    }
