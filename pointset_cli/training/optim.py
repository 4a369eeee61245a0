"""The optimiser: global-norm clipping, then Adam (AdamW with weight decay; decays b1, b2), warm-up + cosine decay."""

from __future__ import annotations

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


def make_optimizer(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """Raises UsageError when Adam's decays are outside [0, 1)."""
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
    return optax.chain(*clip, adam)
