"""Nearest-neighbour search between padded sets, never building a [B, N, M] matrix.

On the CPU backend with numba installed, a compiled kernel (pointset_cli.distances.nearest_kernel)
runs as an XLA FFI call, so programs that search stay in JAX's compilation cache; elsewhere (GPU,
or no numba) a pure-JAX search runs in tiles. The kernel is only used where XLA has two threads:
with one (a process limited to one core, or XLA_FLAGS=intra_op_parallelism_threads=1) the kernel,
then called through a Python callback, was seen to deadlock in `pointset eval`, waiting for an
operand that the only XLA thread had yet to produce.

Only indices leave this module: callers gather the neighbours and compute the distances
themselves, so autodiff sees a gather (backward O(B*N*D)) instead of a min over a matrix.
"""

from __future__ import annotations

import functools
import os
import re

import jax
import jax.numpy as jnp

from pointset_cli.distances.costs import pairwise_cost


def nearest_index(
    x: jax.Array, y: jax.Array, y_mask: jax.Array | None = None, *, metric: str = "sq", chunk: int = 128,
    use_kernel: bool | None = None,
) -> jax.Array:
    """Index of the nearest real point of y for every point of x.

    x [B, N, D], y [B, M, D], y_mask [B, M] bool -> int32 [B, N]. "euclidean" searches with
    squared distances (same neighbour). Memory is O(B * chunk * M). Where y has no real point
    the index is 0 (callers mask that direction out). Ties go to the lowest index. Not
    differentiable (integer output). use_kernel: None picks the numba kernel on CPU when available.
    """
    search_metric = "sq" if metric == "euclidean" else metric
    y = jax.lax.stop_gradient(y)
    x = jax.lax.stop_gradient(x)
    mask = jnp.ones(y.shape[:2], bool) if y_mask is None else y_mask.astype(bool)
    if use_kernel is None:
        use_kernel = jax.default_backend() == "cpu" and xla_has_two_threads() and _kernels().available()
    if use_kernel:
        kernels = _kernels()
        out_type = jax.ShapeDtypeStruct(x.shape[:-1], jnp.int32)
        code = jnp.array([kernels.METRICS.index(search_metric)], jnp.int32)
        call = jax.ffi.ffi_call(kernels.target(), out_type, vmap_method="broadcast_all")
        return call(x.astype(jnp.float32), y.astype(jnp.float32), mask, code)
    return _tiled_search(x, y, mask, search_metric, chunk)


def _kernels():
    """pointset_cli.distances.nearest_kernel, imported at trace time: numba (about 0.15 s) loads only
    in processes that search, not in every one that imports the losses."""
    from pointset_cli.distances import nearest_kernel
    return nearest_kernel


@functools.cache
def xla_has_two_threads() -> bool:
    """Whether XLA:CPU runs with more than one thread here (usable cores and XLA_FLAGS)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    one_thread = re.search(r"intra_op_parallelism_threads=1(\s|$)", os.environ.get("XLA_FLAGS", ""))
    return cores >= 2 and one_thread is None


def _tiled_search(x: jax.Array, y: jax.Array, mask: jax.Array, metric: str, chunk: int) -> jax.Array:
    b, n, _ = x.shape
    chunk = min(chunk, n)
    n_chunks = -(-n // chunk)
    x_pad = jnp.pad(x, ((0, 0), (0, n_chunks * chunk - n), (0, 0)))
    tiles = x_pad.reshape(b, n_chunks, chunk, -1).swapaxes(0, 1)  # [C, B, chunk, D]

    def one_tile(xt: jax.Array) -> jax.Array:
        d = pairwise_cost(xt, y, metric)  # [B, chunk, M]
        return jnp.argmin(jnp.where(mask[:, None, :], d, jnp.inf), axis=-1).astype(jnp.int32)

    idx = jax.lax.map(one_tile, tiles)  # [C, B, chunk]
    return idx.swapaxes(0, 1).reshape(b, n_chunks * chunk)[:, :n]
