"""Chamfer against a brute-force NumPy reference, with masks, garbage padding, weights and gradients."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from pointset_testing.setdata import mnist_sets, modelnet_chairs, pad_with_garbage

from pointset_cli import losses
from pointset_cli.distances.nearest import nearest_index


def huber(d):
    a = np.abs(d)
    return np.where(a < 1, 0.5 * d * d, a - 0.5).sum(-1)


REF_COST = {
    "sq": lambda a, b: cdist(a, b, "sqeuclidean"),
    "euclidean": lambda a, b: cdist(a, b),
    "l1": lambda a, b: cdist(a, b, "cityblock"),
    "huber": lambda a, b: huber(a[:, None, :] - b[None, :, :]),
}


def ref_chamfer(a, b, metric="sq"):
    d = REF_COST[metric](a.astype(np.float64), b.astype(np.float64))
    return d.min(1).mean() + d.min(0).mean()


def random_sets(rng, count, lo, hi, dim=3, scale=1.0):
    return [(rng.normal(size=(rng.integers(lo, hi + 1), dim)) * scale).astype(np.float32) for _ in range(count)]


@pytest.mark.parametrize("metric", ["sq", "euclidean", "l1", "huber"])
@pytest.mark.parametrize("use_kernel", [True, False])
def test_matches_numpy_on_uneven_padded_sets(metric, use_kernel, monkeypatch):
    rng = np.random.default_rng(0)
    xs, ys = random_sets(rng, 5, 3, 40, scale=2.0), random_sets(rng, 5, 1, 33, scale=2.0)
    x, xm = pad_with_garbage(xs, rng)
    y, ym = pad_with_garbage(ys, rng)
    if not use_kernel:
        monkeypatch.setattr("pointset_cli.distances.nearest_kernel.available", lambda: False)
    got = np.asarray(losses.chamfer(x, y, xm, ym, metric=metric, chunk=16))
    want = [ref_chamfer(a, b, metric) for a, b in zip(xs, ys)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("dim", [1, 2, 3, 5])  # 1-3: the kernel's 3D loop (padded), 5: its any-D loop
def test_kernel_and_tiled_search_agree(dim):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 4, 100, dim)).astype(np.float32)
    ym = rng.random((4, 100)) < 0.7
    fast = nearest_index(x, y, ym, use_kernel=True)
    tiled = nearest_index(x, y, ym, use_kernel=False, chunk=32)
    np.testing.assert_array_equal(fast, tiled)
    assert ym[np.arange(4)[:, None], np.asarray(fast)].all()


@pytest.mark.parametrize("metric", ["sq", "l1", "huber"])
def test_kernel_finds_the_lowest_index_nearest_among_real_ties(metric, shared_data):
    """MNIST digits lie on a pixel grid, so most points have several equally near neighbours: the
    kernel must return the lowest-index one, as brute force does, with the padding scattered
    through y (not only at its end), sizes that fill no whole tile, and a y with no real point."""
    rng = np.random.default_rng(3)
    digits = mnist_sets(shared_data, 6)
    x, _ = pad_with_garbage(digits[:3], rng)
    y, ym = pad_with_garbage(digits[3:], rng)
    scatter = rng.permutation(y.shape[1])
    y, ym = y[:, scatter], ym[:, scatter]
    ym[2] = False
    got = np.asarray(nearest_index(x, y, ym, metric=metric, use_kernel=True))
    term = {"sq": np.square, "l1": np.abs, "huber": lambda d: np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5)}
    ties = 0
    for b in range(2):
        real = np.flatnonzero(ym[b])
        d = term[metric](digits[b][:, None] - y[b][real][None]).sum(-1)  # float32, as the kernel sums
        ties += int(np.sum(np.sum(d == d.min(axis=1, keepdims=True), axis=1) > 1))
        np.testing.assert_array_equal(got[b][: len(digits[b])], real[np.argmin(d, axis=1)])
    assert ties >= 5  # the case this test is for
    assert (got[2] == 0).all()
    assert (got[:2] >= 0).all() and ym[np.arange(2)[:, None], got[:2]].all()


def test_real_sets_mnist_and_modelnet(shared_data):
    rng = np.random.default_rng(2)
    digits = mnist_sets(shared_data, 8)
    x, xm = pad_with_garbage(digits[:4], rng)
    y, ym = pad_with_garbage(digits[4:], rng)
    want = [ref_chamfer(a, b) for a, b in zip(digits[:4], digits[4:])]
    np.testing.assert_allclose(losses.chamfer(x, y, xm, ym), want, rtol=1e-5)
    chairs = np.stack(modelnet_chairs(4, 256, rng))
    np.testing.assert_allclose(losses.chamfer(chairs[:2], chairs[2:]), [ref_chamfer(chairs[0], chairs[2]), ref_chamfer(chairs[1], chairs[3])], rtol=1e-5)


def test_permutation_invariance_and_reductions():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 3, 50, 2)).astype(np.float32)
    base = np.asarray(losses.chamfer(x, y))
    np.testing.assert_allclose(losses.chamfer(x[:, rng.permutation(50)], y[:, rng.permutation(50)]), base, rtol=1e-6)
    np.testing.assert_allclose(losses.chamfer(x, y, reduction="mean"), base.mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.chamfer(x, y, reduction="sum"), base.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        losses.chamfer(x, y, reduction="avg")


@pytest.mark.parametrize("metric", ["sq", "l1", "huber"])
def test_gradient_matches_finite_differences_and_ignores_padding(metric):
    rng = np.random.default_rng(4)
    x, xm = pad_with_garbage(random_sets(rng, 2, 6, 9), rng)
    y, ym = pad_with_garbage(random_sets(rng, 2, 5, 8), rng)
    f = lambda a: losses.chamfer(a, y, xm, ym, metric=metric, reduction="sum")  # noqa: E731
    grad = np.asarray(jax.jit(jax.grad(f))(jnp.asarray(x)))
    assert np.all(grad[~xm] == 0)
    clean = np.where(xm[..., None], x, 0.0).astype(np.float64)
    h = 1e-3
    for b, i, d in [(0, 0, 0), (0, 3, 2), (1, 4, 1)]:
        up, down = clean.copy(), clean.copy()
        up[b, i, d] += h
        down[b, i, d] -= h
        ref = lambda p: sum(ref_chamfer(p[k][xm[k]], y[k][ym[k]], metric) for k in range(2))  # noqa: E731
        np.testing.assert_allclose(grad[b, i, d], (ref(up) - ref(down)) / (2 * h), rtol=2e-3, atol=1e-4)


def test_presence_weights_follow_dspn_augmented_sets():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 6, 2)).astype(np.float32)
    w = rng.uniform(size=(1, 6)).astype(np.float32)
    y, ym = pad_with_garbage([rng.normal(size=(4, 2)).astype(np.float32)], rng, n_max=5)
    x_aug = np.concatenate([x[0], w[0][:, None]], 1)
    y_aug = np.concatenate([np.concatenate([y[0][ym[0]], np.ones((4, 1))], 1), np.zeros((2, 3))])  # 2 absent
    np.testing.assert_allclose(losses.chamfer(x, y, None, ym, x_weights=w), [ref_chamfer(x_aug, y_aug)], rtol=1e-5)
    grad_w = jax.grad(lambda v: losses.chamfer(x, y, None, ym, x_weights=v, reduction="sum"))(jnp.asarray(w))
    assert np.all(np.isfinite(grad_w)) and np.any(grad_w != 0)


@pytest.mark.parametrize(("flags", "two"), [("", True), ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1", False),
                                           ("intra_op_parallelism_threads=16", True)])
def test_kernel_needs_two_xla_threads(flags, two, monkeypatch):
    import os

    from pointset_cli.distances import nearest

    nearest.xla_has_two_threads.cache_clear()
    monkeypatch.setenv("XLA_FLAGS", flags)
    try:
        assert nearest.xla_has_two_threads() == (two and len(os.sched_getaffinity(0)) >= 2)
    finally:
        nearest.xla_has_two_threads.cache_clear()


def test_reconstruction_metrics_finish_with_one_xla_thread():
    """With a single XLA thread the host-callback kernel deadlocked; the tiled search must run instead."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from pointset_cli.io.mnist import image_to_set, read_mnist\n"
        "from pointset_cli.metrics import reconstruction_metrics\n"
        "images, _ = read_mnist('data/mnist_t10k/t10k-images-idx3-ubyte.gz')\n"
        "sets = [image_to_set(img, 127) for img in images[:64]]\n"
        "n = max(len(s) for s in sets)\n"
        "x = np.zeros((64, n, 2), np.float32); m = np.zeros((64, n), bool)\n"
        "for i, s in enumerate(sets): x[i, :len(s)] = s; m[i, :len(s)] = True\n"
        "y = x * np.float32(0.9)\n"
        "print(reconstruction_metrics(x, y, m, m)['cd'])\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    # The same sets scored in this process (two XLA threads: the kernel path) and by brute force.
    from pointset_cli.io.mnist import image_to_set, read_mnist
    from pointset_cli.metrics import reconstruction_metrics

    images, _ = read_mnist(root / "data/mnist_t10k/t10k-images-idx3-ubyte.gz")
    sets = [image_to_set(img, 127) for img in images[:64]]
    brute = np.mean([cdist(s, 0.9 * s, "sqeuclidean").min(1).mean() + cdist(0.9 * s, s, "sqeuclidean").min(1).mean()
                     for s in sets])
    x, m = pad_with_garbage(sets, np.random.default_rng(0))
    assert float(out.stdout.strip()) == pytest.approx(brute, rel=1e-4)
    assert reconstruction_metrics(x, x * np.float32(0.9), m, m)["cd"] == pytest.approx(brute, rel=1e-4)
