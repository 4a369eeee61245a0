"""The exchangeable coupling flow: invertible, exact log-determinant, equivariant."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pointset_cli.models.setflow import SetFlow, SetFlowConfig

CFG = SetFlowConfig(steps=3, hidden=16, heads=2, scale_bound=2.0)


def flow(dim: int, n_classes: int = 0):
    """(init, (forward, inverse)) of a SetFlow as pure functions of params."""

    def functions():
        f = SetFlow(dim, CFG, n_classes)

        def init(x, mask, labels):
            z, _ = f.forward(x, mask, labels)
            return f.inverse(z, mask, labels)

        return init, (f.forward, f.inverse)

    return hk.multi_transform(functions)


def random_params(fns, x, mask, labels, seed=0, scale=0.3):
    """Params off the identity initialisation (zero-init couplings would make everything trivial)."""
    params = fns.init(jax.random.PRNGKey(seed), x, mask, labels)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def inputs(dim, sizes, n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(len(sizes), n, dim)), jnp.float32)
    mask = jnp.arange(n)[None, :] < jnp.asarray(sizes)[:, None]
    return x, mask, jnp.asarray(np.arange(len(sizes)) % 2, jnp.int32)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_round_trip(dim):
    x, mask, labels = inputs(dim, [6, 3, 1])
    fns = flow(dim, n_classes=2)
    params = random_params(fns, x, mask, labels)
    forward, inverse = fns.apply
    z, _ = jax.jit(forward)(params, None, x, mask, labels)
    back = jax.jit(inverse)(params, None, z, mask, labels)
    assert np.max(np.abs(np.asarray(z - x)[np.asarray(mask)])) > 0.1  # not the identity
    np.testing.assert_allclose(np.asarray(back)[np.asarray(mask)], np.asarray(x)[np.asarray(mask)], atol=1e-5)


@pytest.mark.parametrize("dim,k", [(2, 1), (2, 3), (3, 2)])
def test_log_det_equals_brute_force_jacobian(dim, k):
    x, mask, labels = inputs(dim, [k], n=4)  # one padded set
    fns = flow(dim, n_classes=2)
    params = random_params(fns, x, mask, labels, seed=3)
    forward = fns.apply[0]

    def real_map(flat):  # the k real points [k*D] -> their images [k*D], padding held fixed
        xs = x.at[0, :k].set(flat.reshape(k, dim))
        return forward(params, None, xs, mask, labels)[0][0, :k].reshape(-1)

    jac = jax.jacfwd(real_map)(x[0, :k].reshape(-1))
    sign, brute = np.linalg.slogdet(np.asarray(jac, np.float64))
    _, logdet = forward(params, None, x, mask, labels)
    assert sign > 0
    assert float(logdet[0]) == pytest.approx(brute, abs=1e-4)
    # the couplings make points interact: the Jacobian is not block-diagonal over points
    off = np.asarray(jac).reshape(k, dim, k, dim)[0, :, 1:, :] if k > 1 else np.zeros(1)
    assert k == 1 or np.max(np.abs(off)) > 1e-3


def test_forward_is_permutation_equivariant_and_ignores_padding():
    x, mask, labels = inputs(2, [6, 4])
    fns = flow(2)
    params = random_params(fns, x, mask, labels)
    forward = jax.jit(fns.apply[0])
    z, logdet = forward(params, None, x, mask, labels)
    perm = np.array([3, 0, 2, 1, 4, 5])
    xp = np.asarray(x)[:, perm]
    xp[1, 4:] = 1e7  # garbage in set 1's padding
    zp, logdet_p = forward(params, None, jnp.asarray(xp), mask, labels)
    np.testing.assert_allclose(np.asarray(zp)[:, :4], np.asarray(z)[:, perm[:4]], atol=1e-5)
    np.testing.assert_allclose(np.asarray(logdet_p), np.asarray(logdet), rtol=1e-5, atol=1e-5)
