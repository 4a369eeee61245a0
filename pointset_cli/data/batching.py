"""Seeded, resumable batches streamed from an HDF5 dataset, with augmentation.

The batch of step `t` depends only on (seed, t): epoch e = t // steps_per_epoch is a permutation
of the split drawn from (seed, e), and augmentation draws from (seed, t). So a resumed run needs
only the step to continue with exactly the same data order. Only the sets of the current batch
are read from disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from pointset_cli.config import DataConfig
from pointset_cli.errors import InputError


class Batch(NamedTuple):
    """A batch of padded sets, the one form every model, loss and step takes (NumPy or JAX arrays)."""

    points: Any  # [B, N, D] float32; padding rows may hold anything
    mask: Any  # [B, N] bool, True where a point is real
    labels: Any  # [B] int32 class labels


def rotation_matrix(angle: float, dim: int, up_axis: int) -> np.ndarray:
    """[D, D] rotation by `angle` in the plane (2D) or about axis `up_axis` (3D)."""
    c, s = np.cos(angle), np.sin(angle)
    plane = np.array([[c, -s], [s, c]], dtype=np.float32)
    if dim == 2:
        return plane
    rot = np.eye(3, dtype=np.float32)
    a, b = [i for i in range(3) if i != up_axis]
    rot[np.ix_([a, b], [a, b])] = plane
    return rot


def subsample(points: np.ndarray, mask: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most `k` random real points of each set, moved to the front; [B, N, D], [B, N]."""
    out_p, out_m = np.zeros_like(points), np.zeros_like(mask)
    for i in range(points.shape[0]):
        real = np.flatnonzero(mask[i])
        keep = rng.permutation(real)[:k] if len(real) > k else real
        out_p[i, : len(keep)] = points[i, keep]
        out_m[i, : len(keep)] = True
    return out_p, out_m


def augment(points: np.ndarray, mask: np.ndarray, cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation about the up axis, jitter and subsampling of a padded batch [B, N, D]."""
    if cfg.subsample > 0:
        points, mask = subsample(points, mask, cfg.subsample, rng)
    if cfg.rotate_up:
        dim = points.shape[-1]
        rots = np.stack([rotation_matrix(a, dim, cfg.up_axis) for a in rng.uniform(0, 2 * np.pi, len(points))])
        points = np.einsum("bnd,bed->bne", points, rots)
    if cfg.jitter > 0:
        points = points + rng.normal(0.0, cfg.jitter, points.shape).astype(np.float32)
    return np.where(mask[..., None], points, 0.0).astype(np.float32), mask


class BatchStream:
    """Batches of a split of `dataset` (a SetDataset), addressable by training step."""

    def __init__(self, dataset: Any, indices: np.ndarray, batch_size: int, seed: int, cfg: DataConfig | None = None):
        if len(indices) == 0:
            raise InputError("the training split is empty", getattr(dataset, "path", None))
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = min(batch_size, len(self.indices))
        self.seed = seed
        self.cfg = cfg
        # The last incomplete batch of an epoch is dropped: one batch shape, one compilation.
        self.steps_per_epoch = len(self.indices) // self.batch_size

    def batch_indices(self, step: int) -> np.ndarray:
        epoch, pos = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.indices)
        return order[pos * self.batch_size : (pos + 1) * self.batch_size]

    def batch(self, step: int, part: tuple[int, int] = (0, 1)) -> Batch:
        """Rows of step `step`'s batch that part `part` = (i, P) of P reads (contiguous, B / P of them)."""
        rows = _part_rows(self.batch_size, part)
        points, mask, labels = self.dataset.read(self.batch_indices(step)[rows])
        if self.cfg is not None and _augments(self.cfg):
            # One generator per row of the whole batch: a row augments alike whichever process reads it.
            out = [augment(points[i : i + 1], mask[i : i + 1], self.cfg,
                           np.random.default_rng([self.seed, 1 << 20, step, row]))
                   for i, row in enumerate(range(rows.start, rows.stop))]
            points, mask = np.concatenate([p for p, _ in out]), np.concatenate([m for _, m in out])
        return Batch(points.astype(np.float32), mask.astype(bool), labels.astype(np.int32))


def _augments(cfg: DataConfig) -> bool:
    return cfg.subsample > 0 or cfg.rotate_up or cfg.jitter > 0


def _part_rows(batch_size: int, part: tuple[int, int]) -> slice:
    i, count = part
    size = batch_size // count
    return slice(i * size, (i + 1) * size)


def fixed_batches(
    dataset: Any, indices: np.ndarray, batch_size: int, part: tuple[int, int] = (0, 1)
) -> Iterator[tuple[Batch, int]]:
    """Every set of `indices` once, in order, in batches of exactly `batch_size` (one shape).

    The last batch is padded by repeating its first sets; yields (batch, number of real rows of the
    whole batch). With `part` = (i, P), only part i's B / P rows of each batch are read.
    """
    for chunk, n_real in fixed_batch_indices(indices, batch_size, part):
        points, mask, labels = dataset.read(chunk)
        yield Batch(points.astype(np.float32), mask.astype(bool), labels.astype(np.int32)), n_real


def fixed_batch_indices(
    indices: np.ndarray, batch_size: int, part: tuple[int, int] = (0, 1)
) -> Iterator[tuple[np.ndarray, int]]:
    """The dataset indices of fixed_batches' rows, batch by batch: (this part's indices, real rows of the whole batch)."""
    indices = np.asarray(indices, dtype=np.int64)
    rows = _part_rows(batch_size, part)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        yield np.resize(chunk, batch_size)[rows], len(chunk)
