"""Lower bounds of the EMD between sets of equal size n, far cheaper than solving it.

The EMD here is the mean Euclidean distance under the best one-to-one matching. Each bound is a
proof that no matching is cheaper, so an exact nearest-neighbour search may skip every pair
whose bound already exceeds the best distance found (pointset_cli.distances.nearest_sets):
- the distance between the centroids (the mean of the matched differences is their centroid
  difference, and a mean of norms is at least the norm of the mean);
- the 1D EMD of the projections onto a unit direction (projection is 1-Lipschitz, and sorting
  solves 1D matching), taken over the D axes and a few fixed directions;
- a feasible dual of the assignment problem: u_i = min_j c_ij, then v_j = min_i (c_ij - u_i),
  so that u_i + v_j <= c_ij and (sum u + sum v) / n <= EMD; and the same with rows and columns
  swapped. It costs one n x n distance pass, about as much as a Chamfer distance;
- an auction stopped at a coarse eps (`brackets`): the dual of its prices below, its assignment's
  cost above, within eps of each other.
"""

from __future__ import annotations

import os

import numba
import numpy as np

from pointset_cli.distances.auction_kernel import bracket
from pointset_cli.distances.threads import map_on_cores

PROJECTIONS = 8  # directions for the 1D bounds: the D axes, then fixed random ones


def directions(dim: int, count: int = PROJECTIONS) -> np.ndarray:
    """[count, dim] unit vectors: the axes first, then seeded random directions (always the same)."""
    extra = np.random.default_rng(0).normal(size=(max(count - dim, 0), dim))
    dirs = np.concatenate([np.eye(dim), extra])[:count]
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def real_points(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """points [M, N, D], mask [M, N] with n real points in every set -> float64 [M, n, D]."""
    sizes = mask.sum(1)
    if len(sizes) and (sizes != sizes[0]).any():
        raise ValueError(f"EMD bounds need sets of equal size; got sizes {sizes.min()}..{sizes.max()}")
    n = int(sizes[0]) if len(sizes) else 0
    return np.asarray(points, np.float64)[np.asarray(mask, bool)].reshape(len(points), n, points.shape[-1])


@numba.njit(parallel=True, cache=True)
def _projection_bounds(proj: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    # proj [M, K, n] sorted along n; centroids [M, D] -> [M, M] symmetric, zero diagonal.
    m, k_count, n = proj.shape
    out = np.zeros((m, m))
    for i in numba.prange(m):
        for j in range(i + 1, m):
            c = 0.0
            for d in range(centroids.shape[1]):
                diff = centroids[i, d] - centroids[j, d]
                c += diff * diff
            best = np.sqrt(c)
            for k in range(k_count):
                s = 0.0
                for t in range(n):
                    s += abs(proj[i, k, t] - proj[j, k, t])
                best = max(best, s / max(n, 1))
            out[i, j] = best
            out[j, i] = best
    return out


def projection_bounds(real: np.ndarray) -> np.ndarray:
    """Centroid and sliced lower bounds of the EMD between every two sets of real [M, n, D] ->
    float64 [M, M] (symmetric, zero diagonal): the largest of the bounds for each pair."""
    proj = np.sort(np.einsum("mnd,kd->mkn", real, directions(real.shape[-1])), axis=-1)
    return _projection_bounds(np.ascontiguousarray(proj), real.mean(1))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _column_pass(x: np.ndarray, y_t: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:
    # out[j] = min_i (|x_i - y_j| - shift[i]); x [n, D], y_t [D, n]. Coordinate-major inner loops
    # over j, so they vectorise; no n x n matrix is kept.
    n, d_count = x.shape
    buf = np.empty(y_t.shape[1], x.dtype)
    out[:] = np.inf
    for i in range(n):
        buf[:] = 0.0
        for d in range(d_count):
            xd, row = x[i, d], y_t[d]
            for j in range(buf.shape[0]):
                diff = xd - row[j]
                buf[j] += diff * diff
        for j in range(buf.shape[0]):
            c = np.sqrt(buf[j]) - shift[i]
            out[j] = c if c < out[j] else out[j]


@numba.njit(cache=True, nogil=True)
def dual_bound(x: np.ndarray, y: np.ndarray) -> float:
    """The larger of the two reduction duals for x [n, D] vs y [n, D] float32 (<= EMD, to float32
    rounding: far inside the search's tolerance, and 5x faster than float64 here)."""
    n = x.shape[0]
    if n == 0:
        return 0.0
    x_t, y_t = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)
    zeros = np.zeros(n, x.dtype)
    col_min, row_min = np.empty(n, x.dtype), np.empty(n, x.dtype)
    col_rest, row_rest = np.empty(n, x.dtype), np.empty(n, x.dtype)
    _column_pass(x, y_t, zeros, col_min)  # min_i c_ij
    _column_pass(y, x_t, zeros, row_min)  # min_j c_ij
    _column_pass(x, y_t, row_min, col_rest)  # min_i (c_ij - row_min_i)
    _column_pass(y, x_t, col_min, row_rest)  # min_j (c_ij - col_min_j)
    by_rows = (row_min.astype(np.float64).sum() + col_rest.astype(np.float64).sum()) / n
    by_cols = (col_min.astype(np.float64).sum() + row_rest.astype(np.float64).sum()) / n
    return max(by_rows, by_cols)


def _over_pairs(fn, real: np.ndarray, rows: np.ndarray, cols: np.ndarray, outputs: int, *args) -> np.ndarray:
    """fn(real[rows[k]], real[cols[k]], *args) for every k -> float64 [K, outputs], pairs on all cores."""
    out = np.empty((len(rows), outputs))
    chunk = max(1, min(16, len(rows) // (4 * (os.cpu_count() or 1))))  # small batches still use every core

    def run(start: int) -> int:
        stop = min(start + chunk, len(rows))
        for k in range(start, stop):
            out[k] = fn(real[rows[k]], real[cols[k]], *args)
        return stop - start

    map_on_cores(run, range(0, len(rows), chunk))
    return out


def dual_bounds(real: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """dual_bound of real[rows[k]] vs real[cols[k]] for every k -> float64 [K]."""
    return _over_pairs(dual_bound, np.ascontiguousarray(real, np.float32), rows, cols, 1)[:, 0]


def brackets(real: np.ndarray, rows: np.ndarray, cols: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower [K], upper [K]) bounds of the EMD of each pair from an auction stopped at `eps`
    (auction_kernel.bracket): within eps of each other, for about half an exact solve's time."""
    out = _over_pairs(bracket, np.ascontiguousarray(real, np.float64), rows, cols, 2, eps)
    return out[:, 0], out[:, 1]
