"""Nearest-neighbour search on the CPU with numba: no distance matrix, all cores.

`available()` says whether numba imports; `nearest_index_host` is called through
`jax.pure_callback` by pointset_cli.distances.nearest on the CPU backend. The kernel is a module-level
function (not a closure), so numba's on-disk cache serves it to every later process; only the
first use on a machine compiles (a few seconds).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # the pure-JAX tiled search runs instead
    numba = None

METRICS = ("sq", "l1", "huber")


def available() -> bool:
    return numba is not None


if numba is not None:

    @numba.njit(inline="always")
    def _term(diff, code):
        if code == 0:
            return diff * diff
        a = abs(diff)
        if code == 1:
            return a
        return 0.5 * diff * diff if a < 1.0 else a - 0.5

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _search(x, y_t, out, code):  # x [B, N, D], y_t [B, D, M] with +inf at padding; code: METRICS index
        b_count, n, d_count = x.shape
        m = y_t.shape[2]
        for flat in numba.prange(b_count * n):
            b, i = flat // n, flat % n
            dist = np.zeros(m, np.float32)
            for d in range(d_count):  # coordinate-major so the j loops vectorise
                xd = x[b, i, d]
                for j in range(m):
                    dist[j] += _term(xd - y_t[b, d, j], code)
            best = np.inf
            for j in range(m):
                best = min(best, dist[j])
            for j in range(m):  # first index reaching the minimum: ties go to the lowest index
                if dist[j] == best:
                    out[b, i] = j
                    break


def nearest_index_host(x: np.ndarray, y: np.ndarray, y_mask: np.ndarray, metric: str) -> np.ndarray:
    """x [..., N, D], y [..., M, D], y_mask [..., M] -> int32 [..., N]; index 0 where y is all padding."""
    lead = x.shape[:-2]
    x3 = np.ascontiguousarray(x, np.float32).reshape(-1, *x.shape[-2:])
    y3 = np.asarray(y, np.float32).reshape(-1, *y.shape[-2:])
    mask = np.asarray(y_mask, bool).reshape(y3.shape[:2])
    y_t = np.ascontiguousarray(np.where(mask[..., None], y3, np.inf).transpose(0, 2, 1))
    out = np.zeros(x3.shape[:2], np.int32)
    _search(x3, y_t, out, METRICS.index(metric))
    return out.reshape(*lead, -1)
