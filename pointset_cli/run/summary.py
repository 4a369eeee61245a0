"""What `pointset info RUN` says of a run folder: its model, data, progress, best step and
checkpoints, read from the run's records alone (no JAX, no Orbax, no dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pointset_cli import config as config_mod
from pointset_cli.models import encoder_name
from pointset_cli.run import folder
from pointset_cli.run.checkpoints import steps_in


def summarise(path: str | Path) -> dict[str, Any]:
    """A run folder -> a JSON-ready summary; not a run folder -> InputError (from folder.open_run)."""
    paths = folder.open_run(path)
    cfg = config_mod.load(paths.config)
    info = folder.read_json(paths.data_info)
    info = info if isinstance(info, dict) else {}
    rows = folder.MetricsLog(paths.metrics).read()
    train_rows = [r for r in rows if "loss" in r]
    val_rows = [r for r in rows if "val_loss" in r]
    best = min(val_rows, key=lambda r: r["val_loss"]) if val_rows else None
    return {
        "run": str(paths.root),
        "model": cfg.model.name,
        "encoder": encoder_name(cfg.model),
        "task": cfg.model.task,
        "latent_dim": cfg.model.latent_dim,
        "loss": cfg.model.loss,
        "dataset": str((paths.root / info["dataset"]).resolve()) if "dataset" in info else None,
        "dim": info.get("dim"),
        "n_max": info.get("n_max"),
        "classes": len(info["classes"]) if "classes" in info else None,
        "steps_configured": cfg.train.steps,
        "steps_done": train_rows[-1]["step"] if train_rows else 0,
        "last_loss": train_rows[-1]["loss"] if train_rows else None,
        "best": {"step": best["step"], "val_loss": best["val_loss"]} if best else None,
        "checkpoints": {"latest": steps_in(paths.checkpoints / "latest"), "best": steps_in(paths.checkpoints / "best")},
        "prior": paths.prior.is_file(),
        "evaluated": paths.eval_json.is_file(),
    }
