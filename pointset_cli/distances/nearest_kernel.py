"""Nearest-neighbour search on the CPU with numba: no distance matrix, all cores.

`available()` says whether numba imports; `target()` registers the kernel as an XLA FFI handler
(pointset_cli.distances.xla_ffi), which pointset_cli.distances.nearest calls on the CPU backend. The
kernels are module-level functions (not closures), so numba's on-disk cache serves them to every
later process; only the first use on a machine compiles (a few seconds).
"""

from __future__ import annotations

import functools

import numpy as np

from pointset_cli.distances import xla_ffi
from pointset_cli.distances.xla_ffi import available, numba  # available(): what callers of this module ask

METRICS = ("sq", "l1", "huber")
TILE = 64  # queries searched together (at B=32, N=M=2048: 18 ms against 92 ms one query at a time)

if numba is not None:

    @numba.njit(inline="always")
    def _term(diff, code):
        if code == 0:
            return diff * diff
        a = abs(diff)
        if code == 1:
            return a
        half = np.float32(0.5)  # float32 throughout, as the sum the callers' brute force computes
        return half * diff * diff if a < 1.0 else a - half

    @numba.njit(inline="always")
    def _scan3(xq, y, b, j, width, best, index, code):
        """Queries xq [3, TILE] against y[b, j : j + width] (width 1 or 4, a constant once inlined):
        each query's coordinates and best so far stay in registers across the `width` points."""
        for q in range(TILE):
            a0, a1, a2 = xq[0, q], xq[1, q], xq[2, q]
            nearest, found = best[q], index[q]
            for k in range(width):
                dist = _term(a0 - y[b, j + k, 0], code) + _term(a1 - y[b, j + k, 1], code) + \
                    _term(a2 - y[b, j + k, 2], code)
                nearer = dist < nearest  # strictly nearer: ties keep the lowest index
                nearest = dist if nearer else nearest
                found = np.int32(j + k) if nearer else found
            best[q], index[q] = nearest, found

    @numba.njit(inline="always")
    def _scan(xq, y, b, j, best, index, dist, code):
        """Queries xq [D, TILE] against y[b, j], any D: one coordinate at a time through dist [TILE]."""
        yd = y[b, j, 0]
        for q in range(TILE):
            dist[q] = _term(xq[0, q] - yd, code)
        for d in range(1, xq.shape[0]):
            yd = y[b, j, d]
            for q in range(TILE):
                dist[q] += _term(xq[d, q] - yd, code)
        for q in range(TILE):  # strictly nearer: ties keep the lowest index
            nearer = dist[q] < best[q]
            best[q] = dist[q] if nearer else best[q]
            index[q] = np.int32(j) if nearer else index[q]

    @numba.njit(inline="always")
    def _tile(xq, y, b, count, best, index, dist, code):
        """One pass over y's real points for a whole tile of queries; every inner loop runs over the
        tile without a dependency between queries, so it vectorises."""
        if xq.shape[0] != 3:
            for j in range(count):
                _scan(xq, y, b, j, best, index, dist, code)
            return
        j = 0
        while j + 4 <= count:
            _scan3(xq, y, b, j, 4, best, index, code)
            j += 4
        while j < count:
            _scan3(xq, y, b, j, 1, best, index, code)
            j += 1

    @numba.njit(parallel=True, cache=True)
    def _search(x_t, y, counts, out, code):  # x_t [B, D, N]; y [B, M, D], its counts[b] real points first
        b_count, d_count, n = x_t.shape
        tiles = (n + TILE - 1) // TILE
        for flat in numba.prange(b_count * tiles):
            b, start = flat // tiles, (flat % tiles) * TILE
            rows = min(TILE, n - start)
            xq = np.zeros((d_count, TILE), np.float32)  # the tile's queries, coordinate-major
            for d in range(d_count):
                for q in range(rows):
                    xq[d, q] = x_t[b, d, start + q]
            best = np.full(TILE, np.inf, np.float32)
            index = np.zeros(TILE, np.int32)
            dist = np.empty(TILE, np.float32)
            # The metric as a constant in each branch, so each inlined loop is compiled for one term.
            if code == 0:
                _tile(xq, y, b, counts[b], best, index, dist, 0)
            elif code == 1:
                _tile(xq, y, b, counts[b], best, index, dist, 1)
            else:
                _tile(xq, y, b, counts[b], best, index, dist, 2)
            for q in range(rows):
                out[b, start + q] = index[q]

    @numba.njit(cache=True)
    def nearest_into(x, y, y_mask, code, out):
        """out [B, N] int32 <- the index of the nearest real point of y [B, M, D] (y_mask [B, M]) for
        every point of x [B, N, D]; 0 where y has no real point; ties go to the lowest index."""
        b_count, n, d_count = x.shape
        m = y.shape[1]
        width = 3 if d_count < 3 else d_count  # 1-2D points padded with zero coordinates (a zero term) take the 3D loop
        x_t = np.zeros((b_count, width, n), np.float32)  # coordinate-major queries for _search
        real = np.zeros((b_count, m, width), np.float32)  # each set's real points first
        where = np.empty((b_count, m), np.int32)  # their indices in y
        counts = np.zeros(b_count, np.int64)
        for b in range(b_count):
            for i in range(n):
                for d in range(d_count):
                    x_t[b, d, i] = x[b, i, d]
            for j in range(m):
                if y_mask[b, j]:
                    real[b, counts[b], :d_count] = y[b, j]
                    where[b, counts[b]] = j
                    counts[b] += 1
        _search(x_t, real, counts, out, code)
        for b in range(b_count):
            for i in range(n):
                out[b, i] = where[b, out[b, i]] if counts[b] else 0

    def _handler(address):  # the FFI handler: x, y, y_mask, metric code [1] -> index
        frame = xla_ffi.words(address, xla_ffi.FRAME_WORDS)
        if xla_ffi.answers_metadata(frame) or not xla_ffi.executes(frame):
            return 0
        x, rows, n, d = xla_ffi.rows_shape(frame, 0, False)
        y, _, m, _ = xla_ffi.rows_shape(frame, 1, False)
        mask = xla_ffi.buffer(frame, 2, False)[0]
        code = xla_ffi.array(xla_ffi.buffer(frame, 3, False)[0], (1,), np.int32)[0]
        nearest_into(xla_ffi.array(x, (rows, n, d), np.float32), xla_ffi.array(y, (rows, m, d), np.float32),
                     xla_ffi.array(mask, (rows, m), np.bool_), code,
                     xla_ffi.array(xla_ffi.buffer(frame, 0, True)[0], (rows, n), np.int32))
        return 0


@functools.cache
def target() -> str:
    """The FFI target's name, registered on first call: x [..., N, D] f32, y [..., M, D] f32,
    y_mask [..., M] bool, metric code [1] int32 (METRICS.index) -> int32 [..., N]."""
    return xla_ffi.register("pointset_nearest_index", _handler)
