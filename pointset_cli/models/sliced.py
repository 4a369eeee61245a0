"""The "chamfer_sliced" set loss: Chamfer plus a sliced Wasserstein term, so outputs spread like their target.

Glossary: B batch, N output slots, M target points, D point dimension, P directions.
Chamfer is content when a decoder piles its points where most targets have points: a CD-trained
MLP's chairs are told from real ones by EMD every time (BENCHMARKS.md, ModelNet10). The sliced
Wasserstein-2 distance compares the sets' projections on P fixed unit directions, sorted: in one
dimension sorting is the optimal one-to-one matching, so every part of the target must be covered
by as many output points as it holds, at the cost of one sort per direction instead of a transport
plan. Over directions uniform on the sphere, E[(theta . v)^2] = |v|^2 / D, so D * SW2^2 <= W2^2:
scaled by D the term is in Chamfer's units (squared distance) and is a lower bound of the exact
squared-distance EMD.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from pointset_cli.config import ModelConfig
from pointset_cli.models import registry
from pointset_cli.models.objective import chamfer
from pointset_cli.models.sorting import permute, sort_order

DIRECTIONS = 64  # P


@functools.cache
def directions(dim: int, count: int = DIRECTIONS) -> np.ndarray:
    """[P, D] fixed unit directions (seeded Gaussian, normalised: uniform on the sphere)."""
    v = np.random.default_rng(0).normal(size=(count, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _sorted_projections(points: jax.Array, mask: jax.Array | None, dirs: jax.Array) -> jax.Array:
    """[B, P, N]: each set's projections on dirs [P, D], ascending, padded slots (+inf) last."""
    proj = jnp.einsum("bnd,pd->bpn", points, dirs)  # [B, P, N]
    if mask is not None:
        proj = jnp.where(mask[:, None, :], proj, jnp.inf)
    perm, rank = sort_order(proj, axis=-1)
    return permute(proj, perm, rank, -1)


def sliced_w2(x: jax.Array, y: jax.Array, x_mask: jax.Array | None = None, y_mask: jax.Array | None = None,
              count: int = DIRECTIONS) -> jax.Array:
    """[B] D * SW2^2 between x [B, N, D] and y [B, M, D]: for each direction, the mean squared
    difference of the sorted projections; with n != m real points, the i-th of x's n is matched to
    y's quantile (i + 1/2) / n. Invariant to the order of either set; 0 for an empty x or y.
    """
    b, n, d = x.shape
    dirs = jnp.asarray(directions(d, count))
    sx = _sorted_projections(x, x_mask, dirs)  # [B, P, N]
    sy = _sorted_projections(y, y_mask, dirs)  # [B, P, M]
    n_real = jnp.full((b,), n) if x_mask is None else jnp.sum(x_mask, axis=1)  # [B]
    m_real = jnp.full((b,), y.shape[1]) if y_mask is None else jnp.sum(y_mask, axis=1)  # [B]
    i = jnp.arange(n)[None, :]  # [1, N]
    quantile = ((2 * i + 1) * m_real[:, None]) // jnp.maximum(2 * n_real[:, None], 1)  # [B, N]
    quantile = jnp.clip(quantile, 0, jnp.maximum(m_real[:, None] - 1, 0))
    matched = jnp.take_along_axis(sy, jnp.broadcast_to(quantile[:, None, :], sx.shape), axis=2)  # [B, P, N]
    valid = ((i < n_real[:, None]) & (m_real[:, None] > 0))[:, None, :]  # [B, 1, N]
    diff = jnp.where(valid, sx - matched, 0.0)  # padded slots' +inf never reaches the square
    return d * jnp.sum(diff * diff, axis=(1, 2)) / (count * jnp.maximum(n_real, 1))


@registry.register("loss", "chamfer_sliced", None,
                   "Chamfer + sliced Wasserstein-2 (64 directions): spreads points like the target")
def chamfer_sliced(cfg: ModelConfig, points, mask, presence, target, target_mask, unordered_presence: bool):
    return (chamfer(cfg, points, mask, presence, target, target_mask, unordered_presence)
            + sliced_w2(points, target, mask, target_mask))
