"""The training objective of an autoencoder/conditional decoder: set loss + cardinality terms.

Glossary: B batch, N target points (padded), S output slots, D point dimension.
The set loss compares each output set with its target; how the decoder's size decision enters
depends on its cardinality mode (see cardinality.py):
- fixed: all S outputs against the target;
- size, or ordered presence (RNN): the first n outputs (n = true size, given at training time);
- unordered presence, when the latent carries the size (cfg.size_from "latent"): the n most present
  slots, as the decoder outputs them; the presence BCE trains which slots those are (on MNIST the
  presence-weighted Chamfer below left slot and queries worse than one fixed set: BENCHMARKS.md);
- unordered presence deciding the size itself: the presence variables enter the set loss as each
  loss defines them (chamfer: DSPN's [x, p] coordinates; hungarian: DETR's matched/unmatched BCE;
  sinkhorn has no presence form, so it sees the n most present slots).
Presence BCE and size cross-entropy are added with their weights (no size classifier, and no
size accuracy, when the latent carries the size: cfg.size_from "latent"). DSPN's loss is the mean over
all its iterates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pointset_cli import losses
from pointset_cli.config import ModelConfig
from pointset_cli.models import registry
from pointset_cli.models.cardinality import decided_sizes, presence_bce, presence_mask, size_cross_entropy
from pointset_cli.models.decoder import Decoded


@registry.register("loss", "chamfer", None, "Chamfer: squared distance to the nearest point, both directions")
def chamfer(cfg: ModelConfig, points, mask, presence, target, target_mask, unordered_presence: bool) -> jax.Array:
    weights = presence if unordered_presence else None
    return losses.chamfer(points, target, None if unordered_presence else mask, target_mask, x_weights=weights)


@registry.register("loss", "hungarian", None, "Hungarian: squared distance under the optimal one-to-one matching")
def hungarian(cfg: ModelConfig, points, mask, presence, target, target_mask, unordered_presence: bool) -> jax.Array:
    if unordered_presence:
        return losses.hungarian(points, target, None, target_mask, x_presence=presence)
    return losses.hungarian(points, target, mask, target_mask)


@registry.register("loss", "sinkhorn", None, "Sinkhorn: entropic optimal transport (sinkhorn_eps, sinkhorn_iters)")
def sinkhorn(cfg: ModelConfig, points, mask, presence, target, target_mask, unordered_presence: bool) -> jax.Array:
    return losses.sinkhorn(points, target, mask, target_mask, eps=cfg.sinkhorn_eps, iters=cfg.sinkhorn_iters)


def set_loss(cfg: ModelConfig, points, mask, presence, target, target_mask, unordered_presence: bool) -> jax.Array:
    """[B] cfg.loss between points [B, S, D] (mask [B, S], presence [B, S] or None) and target [B, N, D]."""
    return registry.get("loss", cfg.loss).build(cfg, points, mask, presence, target, target_mask, unordered_presence)


def added_sizes(target_mask, kept=None) -> jax.Array:
    """[B] how many points the decoder makes: each whole set's n, less its kept input's n_in (>= 0)."""
    sizes = jnp.sum(target_mask, axis=1)
    return sizes if kept is None else jnp.maximum(sizes - jnp.sum(kept[1], axis=1), 0)


def joined(kept, points, mask, presence=None):
    """The kept points [B, N_in, D] (mask [B, N_in]) followed by the decoder's points [B, S, D], mask
    [B, S] and presence [B, S] or None: every kept point real, present with probability 1."""
    kept_points, kept_mask = kept
    joined_presence = None if presence is None else jnp.concatenate([kept_mask.astype(presence.dtype), presence], 1)
    return (jnp.concatenate([kept_points, points], 1), jnp.concatenate([kept_mask, mask], 1), joined_presence)


def objective(out: Decoded, target, target_mask, cfg: ModelConfig, mode: str, ordered: bool, kept=None):
    """(scalar total, dict of scalar metrics) for decoder output `out` against target [B, N, D].

    kept: None, or (points [B, N_in, D], mask [B, N_in]) that join the decoder's output in the set
    loss; the decoder adds the n - n_in points the input lacks: presence decides those, a size
    classifier (which cannot count the input) still predicts the whole set's n.
    """
    sizes = jnp.sum(target_mask, axis=1)  # [B]
    n_kept = 0 if kept is None else jnp.sum(kept[1], axis=1)
    added = added_sizes(target_mask, kept)  # [B] what the decoder makes
    # the set loss weighs slots by presence only where presence decides the size
    unordered = mode == "presence" and not ordered and cfg.size_from != "latent"
    steps = out.iterates if out.iterates is not None else ((out.points, out.presence),)
    per_step = []
    presence_terms = []
    for points, presence in steps:
        mask = presence_mask(presence, added, ordered) if mode == "presence" else out.mask
        output = (points, mask, presence) if kept is None else joined(kept, points, mask, presence)
        per_step.append(set_loss(cfg, *output, target, target_mask, unordered))
        if mode == "presence":
            presence_terms.append(presence_bce(presence, added, ordered))
    metrics = {"set_loss": jnp.mean(per_step[-1])}
    total = jnp.mean(jnp.stack(per_step))
    if presence_terms:
        metrics["presence_loss"] = jnp.mean(presence_terms[-1])
        total = total + cfg.presence_weight * jnp.mean(jnp.stack(presence_terms))
    if mode == "size" and out.size_logits is not None:  # none when the latent carries the size
        metrics["size_loss"] = jnp.mean(size_cross_entropy(out.size_logits, sizes))
        total = total + cfg.size_weight * metrics["size_loss"]
    if out.aux_loss is not None:
        metrics["aux_loss"] = jnp.mean(out.aux_loss)
        total = total + metrics["aux_loss"]
    if cfg.size_from != "latent":  # else the size is given: exact by construction
        whole = decided_sizes(out, mode, ordered) + (n_kept if mode == "presence" else 0)  # fixed: all S slots
        metrics["card_acc"] = jnp.mean((whole == sizes).astype(jnp.float32))
    metrics["loss"] = total
    return total, metrics
