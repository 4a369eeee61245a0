"""Sorting for FSPool and presence ranks: numpy's stable order along any axis (ties, infinities,
vmapped), and jnp.sort's values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pointset_cli.models.sorting import sort_descending, sort_order


@pytest.fixture(scope="module")
def keys() -> np.ndarray:
    """[3, 7, 11] small integers (many ties) with an infinity, as FSPool's padding sorts."""
    k = np.random.default_rng(0).integers(0, 5, (3, 7, 11)).astype(np.float32)
    k[0, 0, 0] = k[1, 2, 3] = np.inf
    return k


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_order_is_numpys_stable_order_and_rank_its_inverse(keys, axis):
    perm, rank = sort_order(jnp.asarray(keys), axis)
    expected = np.argsort(keys, axis=axis, kind="stable")
    assert perm.dtype == rank.dtype == jnp.int32
    assert np.array_equal(perm, expected) and np.array_equal(rank, np.argsort(expected, axis=axis))


def test_vmapped_order_and_gradient_of_the_sorted_values(keys):
    batched = jax.vmap(lambda k: sort_order(k, 1)[0])(jnp.asarray(keys))
    assert np.array_equal(batched, np.argsort(keys, axis=2, kind="stable"))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 9, 3)).astype(np.float32))
    weights = jnp.arange(9.0)[:, None]

    def ours(v):
        return jnp.sum(sort_descending(v, 1) * weights)

    def reference(v):
        return jnp.sum(-jnp.sort(-v, axis=1, stable=True) * weights)

    assert np.array_equal(sort_descending(x, 1), -jnp.sort(-x, axis=1))
    np.testing.assert_array_equal(jax.grad(ours)(x), jax.grad(reference)(x))
    def second(f):  # reverse over reverse, as DSPN's outer step differentiates its inner descent
        return jax.grad(lambda v: jnp.sum(jax.grad(lambda u: f(u) ** 2)(v) * v))(x)

    np.testing.assert_allclose(second(ours), second(reference), rtol=1e-6)
