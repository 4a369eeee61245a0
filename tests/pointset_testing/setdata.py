"""Real and random padded sets for the loss and metric tests (garbage in the padding)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def pad_with_garbage(sets: list[np.ndarray], rng: np.random.Generator, n_max: int | None = None):
    """Sets of varying size -> points [B, N, D] with NaN/huge garbage in the padding, mask [B, N]."""
    n_max = n_max or max(len(s) for s in sets)
    dim = sets[0].shape[1]
    points = rng.choice([np.nan, 1e30, -7.0], size=(len(sets), n_max, dim)).astype(np.float32)
    mask = np.zeros((len(sets), n_max), bool)
    for i, s in enumerate(sets):
        points[i, : len(s)], mask[i, : len(s)] = s, True
    return points, mask


def padded_batch(sets: list[np.ndarray], labels: np.ndarray):
    """Sets of varying size -> a Batch of JAX arrays: points [B, N, D] (zero padding), mask [B, N], labels [B]."""
    import jax.numpy as jnp

    from pointset_cli.data.batching import Batch

    n = max(len(s) for s in sets)
    points = np.zeros((len(sets), n, sets[0].shape[1]), np.float32)
    mask = np.zeros((len(sets), n), bool)
    for i, s in enumerate(sets):
        points[i, : len(s)], mask[i, : len(s)] = s, True
    return Batch(jnp.asarray(points), jnp.asarray(mask), jnp.asarray(labels, jnp.int32))


BUNDLED_CHAIRS = Path(__file__).resolve().parents[2] / "data" / "modelnet10_subset" / "chair" / "test"


def modelnet_chairs(count: int, n_points: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The first `count` (<= 20) bundled ModelNet10 test chairs, centred and scaled into the unit ball,
    n_points each."""
    from pointset_cli.io import read_shape

    files = sorted(BUNDLED_CHAIRS.glob("*.pcd"))[:count]
    assert len(files) == count, f"data/ ships 20 test chairs, {count} asked for"
    out = []
    for f in files:
        p = read_shape(f).points
        p = p - p.mean(0)
        p = p / np.linalg.norm(p, axis=1).max()
        out.append(p[rng.choice(len(p), n_points, replace=False)].astype(np.float32))
    return out


def mnist_sets(shared_data: Path, count: int) -> list[np.ndarray]:
    """The first `count` MNIST training digits as 2D sets: pixels above 127, scaled to [0, 1]."""
    with gzip.open(shared_data / "mnist5k_train/mnist_5k.csv.gz", "rt") as f:
        rows = [next(f) for _ in range(count + 1)]
    out = []
    for row in rows:
        values = row.strip().split(",")
        if not values[0].isdigit():  # a header line
            continue
        img = np.array(values[:784], float).reshape(28, 28)
        yx = np.argwhere(img > 127)
        out.append((yx[:, ::-1] / 27.0).astype(np.float32))
    return out[:count]
