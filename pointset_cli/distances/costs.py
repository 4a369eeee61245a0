"""Point-to-point costs shared by the losses, the solvers and the metrics.

Each cost maps two arrays of points [..., D] to one value per point pair [...]. The pairwise form
broadcasts [B, N, D] against [B, M, D] to [B, N, M].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

METRICS = ("sq", "euclidean", "l1", "huber")


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def _safe_norm(diff: jax.Array) -> jax.Array:
    # sqrt has an infinite derivative at 0: give coincident points a zero gradient instead of NaN.
    sq = jnp.sum(diff * diff, axis=-1)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def point_cost(a: jax.Array, b: jax.Array, metric: str = "sq") -> jax.Array:
    """Cost between matching points a [..., D] and b [..., D] -> [...].

    sq: squared L2; euclidean: L2; l1: sum of absolute differences; huber: smooth-L1 summed
    over coordinates (delta 1, as torch's smooth_l1_loss that DSPN uses).
    """
    check_metric(metric)
    diff = a - b
    if metric == "sq":
        return jnp.sum(diff * diff, axis=-1)
    if metric == "euclidean":
        return _safe_norm(diff)
    absd = jnp.abs(diff)
    if metric == "l1":
        return jnp.sum(absd, axis=-1)
    return jnp.sum(jnp.where(absd < 1.0, 0.5 * diff * diff, absd - 0.5), axis=-1)


def pairwise_cost(x: jax.Array, y: jax.Array, metric: str = "sq") -> jax.Array:
    """All costs between x [..., N, D] and y [..., M, D] -> [..., N, M]."""
    return point_cost(x[..., :, None, :], y[..., None, :, :], metric)
