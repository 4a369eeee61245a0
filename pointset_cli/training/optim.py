"""The optimiser: global-norm clipping, then Adam (AdamW with weight decay), warm-up + cosine decay."""

from __future__ import annotations

import optax

from pointset_cli.config import OptimConfig


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
    schedule = make_schedule(cfg, total_steps)
    adam = (
        optax.adamw(schedule, weight_decay=cfg.weight_decay) if cfg.weight_decay > 0 else optax.adam(schedule)
    )
    clip = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
    return optax.chain(*clip, adam)
