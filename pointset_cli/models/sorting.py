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


def sort_order(keys: jax.Array, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """(perm, rank), int32 shaped like keys: ascending stable order along `axis` and its inverse.

    take_along_axis(keys, perm, axis) is sorted; rank[i] is the sorted position of element i.
    """
    keys = jax.lax.stop_gradient(keys)
    kernel = _cpu_kernel()
    if kernel is not None:
        rows = jnp.moveaxis(keys, axis, -1)
        flat = rows.reshape(-1, rows.shape[-1]).astype(jnp.float32)  # [R, n]
        out = jax.ShapeDtypeStruct(flat.shape, jnp.int32)
        perm, rank = jax.ffi.ffi_call(kernel.target(), (out, out), vmap_method="broadcast_all")(flat)
        return tuple(jnp.moveaxis(a.reshape(rows.shape), -1, axis) for a in (perm, rank))
    perm = jnp.argsort(keys, axis=axis, stable=True).astype(jnp.int32)
    return perm, jnp.argsort(perm, axis=axis).astype(jnp.int32)


def _cpu_kernel():
    """pointset_cli.models.sorting_kernel on the CPU backend with numba, else None (imported here,
    at trace time, so that models which never sort do not load numba)."""
    if jax.default_backend() != "cpu":
        return None
    from pointset_cli.models import sorting_kernel
    return sorting_kernel if sorting_kernel.available() else None


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
