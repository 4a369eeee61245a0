"""The chamfer_sliced loss's sliced Wasserstein term against numpy and the exact EMD, on real sets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from pointset_testing.setdata import mnist_sets, modelnet_chairs, pad_with_garbage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from pointset_cli.models.sliced import directions, sliced_w2


def brute_sliced(x: np.ndarray, y: np.ndarray) -> float:
    """D * SW2^2 written out: the i-th smallest projection of x against y's quantile (i + 1/2) / n."""
    n, m, d = len(x), len(y), x.shape[1]
    total = 0.0
    for theta in directions(d):
        px, py = np.sort(x @ theta), np.sort(y @ theta)
        total += np.mean((px - py[(2 * np.arange(n) + 1) * m // (2 * n)]) ** 2)
    return d * total / len(directions(d))


def exact_w2(x: np.ndarray, y: np.ndarray) -> float:
    """Squared-distance EMD of two equal-size sets (mean over points), by the Hungarian method."""
    cost = cdist(x, y, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def test_equals_brute_force_with_padding_garbage_and_shuffles(shared_data):
    rng = np.random.default_rng(0)
    digits = mnist_sets(shared_data, 6)  # 2D, sizes differ: the quantile matching
    x, xm = pad_with_garbage(digits[:3], rng)
    y, ym = pad_with_garbage(digits[3:], rng)
    got = np.asarray(sliced_w2(jnp.asarray(x), jnp.asarray(y), jnp.asarray(xm), jnp.asarray(ym)))
    want = [brute_sliced(a, b) for a, b in zip(digits[:3], digits[3:])]
    np.testing.assert_allclose(got, want, rtol=2e-5)
    assert min(want) > 0
    perm = rng.permutation(x.shape[1])
    shuffled = sliced_w2(jnp.asarray(x[:, perm]), jnp.asarray(y), jnp.asarray(xm[:, perm]), jnp.asarray(ym))
    np.testing.assert_allclose(np.asarray(shuffled), got, rtol=1e-6)


def test_lower_bound_of_the_exact_emd_and_zero_on_itself():
    """D * SW2^2 <= W2^2 holds in expectation over directions; with 64 fixed ones it holds on real
    chairs with room to spare, and the term is exactly 0 between a set and a shuffle of itself."""
    chairs = modelnet_chairs(4, 256, np.random.default_rng(1))
    x, y = np.stack(chairs[:2]), np.stack(chairs[2:])
    got = np.asarray(sliced_w2(jnp.asarray(x), jnp.asarray(y)))
    for b in range(2):
        assert 0 < got[b] <= exact_w2(x[b], y[b])
    same = sliced_w2(jnp.asarray(x), jnp.asarray(x[:, ::-1]))
    np.testing.assert_array_equal(np.asarray(same), 0.0)


def test_gradient_moves_only_real_points_and_spreads_a_clump(shared_data):
    """The gradient is finite, zero on padded slots, and nonzero on real ones; descending it pulls
    a clumped copy of a digit (every point on one of 4) out toward the whole digit."""
    rng = np.random.default_rng(2)
    digit = mnist_sets(shared_data, 1)[0]
    clumped = digit[np.arange(len(digit)) // 4 * 4]  # points 0-3 all at point 0, 4-7 at point 4, ...
    x, xm = pad_with_garbage([clumped], rng, n_max=len(digit) + 5)
    y = jnp.asarray(digit[None])
    grad = jax.grad(lambda p: sliced_w2(p, y, jnp.asarray(xm))[0])(jnp.asarray(np.nan_to_num(x, nan=3.0)))
    grad = np.asarray(grad)
    assert np.isfinite(grad).all() and (grad[0, len(digit):] == 0).all() and np.abs(grad[0, : len(digit)]).sum() > 0
    start = jnp.asarray(np.where(xm[..., None], x, 0.0))
    loss = lambda p: sliced_w2(p, y, jnp.asarray(xm))[0]  # noqa: E731
    moved = start
    for _ in range(50):  # the loss is a mean over the n points: a step of n/4 moves each point ~diff/4
        moved = moved - len(digit) / 4 * jax.grad(loss)(moved)
    assert float(loss(moved)) < 0.2 * float(loss(start))


def test_registered_loss_is_chamfer_plus_the_sliced_term(mnist_batch):
    from pointset_cli import losses
    from pointset_cli.models import ModelConfig
    from pointset_cli.models.objective import set_loss

    target, mask = jnp.asarray(mnist_batch.points), jnp.asarray(mnist_batch.mask)
    points = target[:, ::-1] * 0.9 + 0.05  # reversed order: padding first
    args = (points, mask[:, ::-1], None, target, mask, False)
    got = set_loss(ModelConfig(loss="chamfer_sliced"), *args)
    chamfer = losses.chamfer(points, target, mask[:, ::-1], mask)
    np.testing.assert_allclose(got, chamfer + sliced_w2(points, target, mask[:, ::-1], mask), rtol=1e-6)
    assert (np.asarray(got) > np.asarray(chamfer)).all()
