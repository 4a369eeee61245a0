"""Batching order and augmentation, the l-GMM prior, renders, the run folder and its lock."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pointset_cli import rundir
from pointset_cli.config import DataConfig
from pointset_cli.data.batching import BatchStream, augment, fixed_batches
from pointset_cli.errors import OutputExistsError, PointsetError, UsageError
from pointset_cli.generate import fit_gmm, load_prior, save_prior


class _FakeSets:
    """SetDataset stand-in over arrays (read in any order), for order and padding properties."""

    def __init__(self, points, mask):
        self.points, self.mask = points, mask

    def read(self, idx):
        return self.points[idx], self.mask[idx], np.asarray(idx, np.int32)


@pytest.fixture(scope="module")
def mnist_sets(tiny_mnist):
    from pointset_cli.data.schema import SetDataset

    with SetDataset(tiny_mnist) as ds:
        points, mask, _ = ds.read(ds.indices())
    return points, mask


def test_batches_depend_only_on_seed_and_step(mnist_sets):
    ds = _FakeSets(*mnist_sets)
    idx = np.arange(0, len(mnist_sets[0]), 2)
    a, b = BatchStream(ds, idx, 5, seed=1), BatchStream(ds, idx, 5, seed=1)
    epoch = np.concatenate([a.batch_indices(s) for s in range(a.steps_per_epoch)])
    assert len(set(epoch.tolist())) == len(epoch) and set(epoch) <= set(idx)  # no repeats within an epoch
    assert all((b.batch_indices(s) == a.batch_indices(s)).all() for s in (0, 3, 17))  # any step, any order
    assert not (a.batch_indices(0) == BatchStream(ds, idx, 5, seed=2).batch_indices(0)).all()
    assert not (a.batch_indices(0) == a.batch_indices(a.steps_per_epoch)).all()  # a new epoch reshuffles


def test_fixed_batches_cover_each_set_once(mnist_sets):
    ds = _FakeSets(*mnist_sets)
    idx = np.arange(len(mnist_sets[0]))[:23]
    seen = np.concatenate([b.labels[:n] for b, n in fixed_batches(ds, idx, 8)])
    assert (seen == idx).all()


def test_augment_keeps_masks_and_rotates_rigidly(mnist_sets):
    points, mask = mnist_sets
    rng = np.random.default_rng(0)
    out, out_mask = augment(points, mask, DataConfig(rotate_up=True), rng)
    assert (out_mask == mask).all()
    norms = lambda p, m: np.linalg.norm(p, axis=-1)[m]  # noqa: E731
    np.testing.assert_allclose(norms(out, mask), norms(points, mask), rtol=1e-5, atol=1e-6)
    sub, sub_mask = augment(points, mask, DataConfig(subsample=20, jitter=0.01), rng)
    assert (sub_mask.sum(1) == np.minimum(mask.sum(1), 20)).all()
    assert (sub[~sub_mask] == 0).all()


def test_gmm_recovers_a_mixture_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    z = np.concatenate([c + rng.normal(0, 0.5, (300, 3)) for c in centres])
    prior = fit_gmm(z, 3, seed=0)
    found = prior.means[np.argsort(prior.means[:, 0] + prior.means[:, 1] * 0.1)]
    np.testing.assert_allclose(found, centres[[0, 2, 1]], atol=0.15)
    save_prior(prior, tmp_path / "prior.npz")
    again = load_prior(tmp_path / "prior.npz")
    a, b = (p.sample(50, np.random.default_rng(1)) for p in (prior, again))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # stored as float32
    assert prior.log_prob(centres).min() > prior.log_prob(np.array([[40.0, 40.0, 40.0]]))[0]


def test_render_grid_and_refusal(mnist_sets, tmp_path):
    from pointset_cli.render import render_sets

    points, mask = mnist_sets
    out = render_sets(points[:5], mask[:5], tmp_path / "g.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputExistsError):
        render_sets(points[:5], mask[:5], tmp_path / "g.png")
    cube = np.random.default_rng(0).normal(size=(2, 30, 3)).astype(np.float32)
    render_sets(cube, np.ones((2, 30), bool), tmp_path / "g3.png")
    assert (tmp_path / "g3.png").stat().st_size > 1000


def test_run_folder_refuses_existing_without_flags(tmp_path):
    paths = rundir.RunPaths(tmp_path / "r")
    assert rundir.check_new_or_resume(paths, False, False) is False
    paths.root.mkdir()
    (paths.root / "config.yaml").write_text("{}")
    with pytest.raises(UsageError, match="--resume"):
        rundir.check_new_or_resume(paths, False, False)
    assert rundir.check_new_or_resume(paths, True, False) is True
    with pytest.raises(UsageError):
        rundir.check_new_or_resume(paths, True, True)


def test_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    paths = rundir.RunPaths(tmp_path / "r")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        paths.root.mkdir()
        paths.lock.write_text(f"{other.pid}\n")
        with pytest.raises(PointsetError, match=f"pid {other.pid}"), rundir.run_lock(paths):
            pass
    finally:
        other.kill()
        other.wait()
    with rundir.run_lock(paths):  # its owner is gone: a stale lock
        assert paths.lock.read_text().strip() == str(os.getpid())
    assert not paths.lock.exists()


def test_metrics_log_truncates_after_resume_step(tmp_path):
    log = rundir.MetricsLog(tmp_path / "m.jsonl")
    for step in (1, 2, 3):
        log.append({"step": step, "loss": float(step)})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "lo')  # a line cut by a kill
    log.truncate_after(2)
    assert [r["step"] for r in log.read()] == [1, 2]


def test_adam_decays_come_from_the_config():
    from pointset_cli.config import OptimConfig
    from pointset_cli.training.optim import make_optimizer, make_schedule

    cfg = OptimConfig(lr=0.1, warmup_steps=0, clip_norm=0.0, b1=0.5, b2=0.9)
    opt, lr = make_optimizer(cfg, 10), make_schedule(cfg, 10)
    grads = [np.array([1.0, -2.0, 0.5], np.float32), np.array([-3.0, 1.0, 0.5], np.float32)]
    state, m, v = opt.init(np.zeros(3, np.float32)), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):  # Adam by hand, bias-corrected, eps 1e-8
        update, state = opt.update(g, state)
        m, v = 0.5 * m + 0.5 * g, 0.9 * v + 0.1 * g**2
        expected = -float(lr(t - 1)) * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-8)
        np.testing.assert_allclose(update, expected, rtol=1e-5)
    with pytest.raises(UsageError, match="optim.b1"):
        make_optimizer(OptimConfig(b1=1.0), 10)
