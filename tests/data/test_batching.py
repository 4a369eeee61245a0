"""Batches addressed by (seed, step), fixed batches for scoring, and augmentation."""

from __future__ import annotations

import numpy as np

from pointset_cli.config import DataConfig
from pointset_cli.data.batching import BatchStream, augment, fixed_batches


class _FakeSets:
    """SetDataset stand-in over arrays (read in any order), for order and padding properties."""

    def __init__(self, points, mask):
        self.points, self.mask = points, mask

    def read(self, idx):
        return self.points[idx], self.mask[idx], np.asarray(idx, np.int32)


def test_batches_depend_only_on_seed_and_step(tiny_sets):
    ds = _FakeSets(*tiny_sets)
    idx = np.arange(0, len(tiny_sets[0]), 2)
    a, b = BatchStream(ds, idx, 5, seed=1), BatchStream(ds, idx, 5, seed=1)
    epoch = np.concatenate([a.batch_indices(s) for s in range(a.steps_per_epoch)])
    assert len(set(epoch.tolist())) == len(epoch) and set(epoch) <= set(idx)  # no repeats within an epoch
    assert all((b.batch_indices(s) == a.batch_indices(s)).all() for s in (0, 3, 17))  # any step, any order
    assert not (a.batch_indices(0) == BatchStream(ds, idx, 5, seed=2).batch_indices(0)).all()
    assert not (a.batch_indices(0) == a.batch_indices(a.steps_per_epoch)).all()  # a new epoch reshuffles


def test_fixed_batches_cover_each_set_once(tiny_sets):
    ds = _FakeSets(*tiny_sets)
    idx = np.arange(len(tiny_sets[0]))[:23]
    seen = np.concatenate([b.labels[:n] for b, n in fixed_batches(ds, idx, 8)])
    assert (seen == idx).all()


def test_augment_keeps_masks_and_rotates_rigidly(tiny_sets):
    points, mask = tiny_sets
    rng = np.random.default_rng(0)
    out, out_mask = augment(points, mask, DataConfig(rotate_up=True), rng)
    assert (out_mask == mask).all()
    norms = lambda p, m: np.linalg.norm(p, axis=-1)[m]  # noqa: E731
    np.testing.assert_allclose(norms(out, mask), norms(points, mask), rtol=1e-5, atol=1e-6)
    sub, sub_mask = augment(points, mask, DataConfig(subsample=20, jitter=0.01), rng)
    assert (sub_mask.sum(1) == np.minimum(mask.sum(1), 20)).all()
    assert (sub[~sub_mask] == 0).all()
