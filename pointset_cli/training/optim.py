"""The optimiser: global-norm clipping, then Adam (AdamW with weight decay; decays b1, b2), warm-up + cosine decay.

Adversarial models train several players (GAST: generator and critic); each gets its own clip and
Adam state, so one player's large gradients neither shrink the other's step nor enter its moments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optax

from pointset_cli.config import OptimConfig
from pointset_cli.errors import UsageError


def make_schedule(cfg: OptimConfig, total_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to `cfg.lr`, then cosine decay to `cfg.end_lr` at `total_steps`."""
    warmup = max(0, min(cfg.warmup_steps, total_steps - 1))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else cfg.lr,
        peak_value=cfg.lr,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=cfg.end_lr,
    )


def player_labels(players: Sequence[str]) -> Callable[[Any], Any]:
    """params -> the same tree of labels: a parameter's player is the first of `players` that its
    haiku module name starts with, else "rest"."""

    def label(module: str) -> str:
        return next((p for p in players if module.startswith(p)), "rest")

    def labels(params: Any) -> Any:
        return {module: {name: label(module) for name in leaves} for module, leaves in params.items()}

    return labels


def make_optimizer(cfg: OptimConfig, total_steps: int, players: Sequence[str] = ()) -> optax.GradientTransformation:
    """The whole optimiser; with `players` (haiku module-name prefixes, see SetModel.players) one
    independent clip + Adam per player and one for the remaining parameters. Raises UsageError
    when Adam's decays are outside [0, 1)."""
    if not (0 <= cfg.b1 < 1 and 0 <= cfg.b2 < 1):
        raise UsageError(f"optim.b1 and optim.b2 must be in [0, 1) (got {cfg.b1}, {cfg.b2})")
    schedule = make_schedule(cfg, total_steps)
    betas = {"b1": cfg.b1, "b2": cfg.b2}
    adam = (
        optax.adamw(schedule, weight_decay=cfg.weight_decay, **betas)
        if cfg.weight_decay > 0
        else optax.adam(schedule, **betas)
    )
    clip = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
    if not players:
        return optax.chain(*clip, adam)
    return optax.multi_transform({p: optax.chain(*clip, adam) for p in (*players, "rest")}, player_labels(players))
