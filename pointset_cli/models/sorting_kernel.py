"""The CPU sort order of pointset_cli.models.sorting: a numba kernel called as an XLA FFI handler.

A module of its own so that numba (about 0.15 s to import) loads only when a program that sorts is
traced, not with every model. `available()` says whether numba imports; `target()` registers the
handler on first call.
"""

from __future__ import annotations

import functools

import numpy as np

from pointset_cli.distances import xla_ffi
from pointset_cli.distances.xla_ffi import available, numba  # available(): what sorting asks

if numba is not None:

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
def target() -> str:
    """The FFI target's name: keys [R, n] float32 -> (perm, rank) int32 [R, n]."""
    return xla_ffi.register("pointset_sort_order", _handler)
