"""Negative log-likelihood of a density model over a data split, in comparable units.

Point-process densities p(X, k) = p_c(k) k! U^k f_k(X) depend on the unit volume U through
k log U, so an NLL is only comparable with the U it was computed with. Models report their own U
(the `unit_volume` loss metric, 1 when absent); this module re-expresses every set's log density
with the requested U (default: the volume of the bounding box of the evaluated, normalised points)
and records it.

Shapes: B batch, N points per set (padded), D point dimension.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from pointset_cli.errors import UsageError


def model_nll(model: Any, params: Any, batches: Iterable[Any], unit_volume: float | None = None) -> dict[str, float]:
    """Mean NLL per set over `batches` (Batch objects holding real sets only).

    Returns nll (nats per set), size_nll (-log p_c(k)), point_nll (the rest: nll - size_nll, or
    None when the model does not report a size term), bits_per_point (nll summed over sets divided
    by the number of points, in bits), unit_volume, n_sets, n_points.
    """
    import jax

    if model.log_prob is None:
        raise UsageError(f"model '{model.config.name}' defines no density (NLL needs poisson or setflow)")
    log_prob, loss = jax.jit(model.log_prob), jax.jit(model.loss)
    totals, sizes, size_terms = [], [], []
    low, high, model_u = None, None, 1.0
    for batch in batches:
        mask = np.asarray(batch.mask, bool)
        totals.append(np.asarray(log_prob(params, batch), np.float64))
        sizes.append(mask.sum(1))
        metrics = loss(params, jax.random.PRNGKey(0), batch)[1]
        model_u = float(metrics.get("unit_volume", 1.0))
        if "size_nll" in metrics:
            size_terms.append(float(metrics["size_nll"]) * len(mask))
        real = np.asarray(batch.points)[mask]
        if len(real):
            low = real.min(0) if low is None else np.minimum(low, real.min(0))
            high = real.max(0) if high is None else np.maximum(high, real.max(0))
    if not totals:
        raise UsageError("no sets to evaluate")
    if unit_volume is None:
        unit_volume = 1.0 if low is None else float(np.prod(np.maximum(high - low, 1e-6)))
    k = np.concatenate(sizes).astype(np.float64)
    log_p = np.concatenate(totals) + k * (math.log(unit_volume) - math.log(model_u))
    nll = float(-log_p.mean())
    size_nll = float(sum(size_terms) / len(k)) if len(size_terms) == len(totals) else None
    return {
        "nll": nll,
        "size_nll": size_nll,
        "point_nll": None if size_nll is None else nll - size_nll,
        "bits_per_point": float(-log_p.sum() / max(k.sum(), 1.0) / math.log(2.0)),
        "unit_volume": unit_volume,
        "n_sets": int(len(k)),
        "n_points": int(k.sum()),
    }


def index_batches(ds: Any, idx: Any, batch_size: int) -> Iterator[Any]:
    """Batches of the sets `idx` of an open SetDataset, in the given order (no padding sets)."""
    import jax.numpy as jnp

    from pointset_cli.data.batching import Batch

    for start in range(0, len(idx), batch_size):
        points, mask, labels = ds.read(idx[start : start + batch_size])
        yield Batch(jnp.asarray(points), jnp.asarray(mask), jnp.asarray(labels))
