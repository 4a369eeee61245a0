"""Sorting along one axis of a set, fast on the CPU, and differentiated by gathers only.

XLA's CPU sort is ~100x slower than numpy's (1 s for [32, 342, 128] along the set axis), and
jnp.sort's derivative is a scatter-add, itself slow on the CPU; DSPN sorts in every inner step
and differentiates twice. Here the order is computed without gradient (on the CPU a numba kernel
called as an XLA FFI handler, so programs that sort stay in JAX's compilation cache; elsewhere, or
without numba, `jnp.argsort`), and the values move by `permute`, whose derivative is the inverse
permutation: a gather, at every order of differentiation. Values and gradients equal jnp.sort's
(both sorts are stable, so ties keep their original order).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from pointset_cli.distances import xla_ffi
from pointset_cli.distances.xla_ffi import numba

if xla_ffi.available():

    @numba.njit(parallel=True, cache=True)
    def order_into(keys, perm, rank):
        """perm, rank [R, n] int32 <- the stable ascending order of each row of keys [R, n] and its inverse."""
        for r in numba.prange(keys.shape[0]):
            order = np.argsort(keys[r], kind="mergesort")
            for i in range(order.shape[0]):
                perm[r, i] = order[i]
                rank[r, order[i]] = i

    def _handler(address):  # the FFI handler: keys -> (perm, rank)
        frame = xla_ffi.words(address, xla_ffi.FRAME_WORDS)
        if xla_ffi.answers_metadata(frame) or not xla_ffi.executes(frame):
            return 0
        keys, rows, r, n = xla_ffi.rows_shape(frame, 0, False)
        shape = (rows * r, n)
        perm = xla_ffi.array(xla_ffi.buffer(frame, 0, True)[0], shape, np.int32)
        rank = xla_ffi.array(xla_ffi.buffer(frame, 1, True)[0], shape, np.int32)
        order_into(xla_ffi.array(keys, shape, np.float32), perm, rank)
        return 0


@functools.cache
def _target() -> str:
    return xla_ffi.register("pointset_sort_order", _handler)


def sort_order(keys: jax.Array, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """(perm, rank), int32 shaped like keys: ascending stable order along `axis` and its inverse.

    take_along_axis(keys, perm, axis) is sorted; rank[i] is the sorted position of element i.
    """
    keys = jax.lax.stop_gradient(keys)
    if jax.default_backend() == "cpu" and xla_ffi.available():
        rows = jnp.moveaxis(keys, axis, -1)
        flat = rows.reshape(-1, rows.shape[-1]).astype(jnp.float32)  # [R, n]
        out = jax.ShapeDtypeStruct(flat.shape, jnp.int32)
        perm, rank = jax.ffi.ffi_call(_target(), (out, out), vmap_method="broadcast_all")(flat)
        return tuple(jnp.moveaxis(a.reshape(rows.shape), -1, axis) for a in (perm, rank))
    perm = jnp.argsort(keys, axis=axis, stable=True).astype(jnp.int32)
    return perm, jnp.argsort(perm, axis=axis).astype(jnp.int32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def permute(x: jax.Array, perm: jax.Array, inverse: jax.Array, axis: int) -> jax.Array:
    """x reordered along `axis` by perm (shaped like x); `inverse` must be perm's inverse."""
    return jnp.take_along_axis(x, perm, axis=axis)


def _permute_fwd(x, perm, inverse, axis):
    return permute(x, perm, inverse, axis), (perm, inverse)


def _permute_bwd(axis, residuals, g):
    perm, inverse = residuals
    return permute(g, inverse, perm, axis), None, None


permute.defvjp(_permute_fwd, _permute_bwd)


def sort_descending(x: jax.Array, axis: int = -1) -> jax.Array:
    """x sorted in descending order along `axis` (stable: equal values keep their order)."""
    perm, rank = sort_order(-x, axis)
    return permute(x, perm, rank, axis)
