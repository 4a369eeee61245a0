"""Assignment solvers: the optimal one-to-one matching between rows and columns of a cost matrix.

Every solver takes a batch of costs [B, N, M] with optional row/column masks and returns, for each
row, the column it is matched to (int32 [B, N]; -1 for a padding row or a real row left unmatched
because there are fewer real columns than real rows). The minimum is over matchings of
min(real rows, real columns) pairs. Solver outputs carry no gradient: losses gather the matched
pairs and differentiate those.

Solvers:
- "scipy": `scipy.optimize.linear_sum_assignment` per pair through `jax.pure_callback`, pairs
  spread over threads (exact; CPU host round trip).
- "optax": `optax.assignment.hungarian_algorithm` under vmap (exact; pure JAX, runs on GPU).
- "auction": Bertsekas' auction with epsilon scaling, batched in JAX; the total cost is within
  N * eps_final of the optimum (eps_final = 2^-18 of the largest |cost|, the float32 limit), so it is
  exact unless two matchings differ by less than that.
- "auction-numba": the same auction on the host in float64 (pointset_cli.distances.auction_kernel, numba,
  pairs over threads) with eps_final = 1e-7 of the largest |cost| of each pair; the total cost is
  within N * eps_final of the optimum. 5-12x faster than scipy at N=1024 (BENCHMARKS.md).
- "auto": "scipy" on CPU (fastest exact on CPU in bench/losses.py: 6-8x faster than optax at
  N=256 and 1024; the auction takes minutes at N=256 on 2 cores), "optax" on accelerators (no
  host round trip; not measured on a GPU yet).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from pointset_cli.distances.threads import map_on_cores

SOLVERS = ("auto", "scipy", "optax", "auction", "auction-numba")


def resolve_solver(solver: str) -> str:
    """The concrete solver "auto" stands for on the default backend."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
    if solver != "auto":
        return solver
    return "scipy" if jax.default_backend() == "cpu" else "optax"


def assign(
    cost: jax.Array,
    row_mask: jax.Array | None = None,
    col_mask: jax.Array | None = None,
    solver: str = "auto",
) -> jax.Array:
    """Optimal matching of cost [B, N, M] -> int32 [B, N] column per row (-1: unmatched/padding)."""
    b, n, m = cost.shape
    row_mask = jnp.ones((b, n), bool) if row_mask is None else row_mask.astype(bool)
    col_mask = jnp.ones((b, m), bool) if col_mask is None else col_mask.astype(bool)
    cost = jax.lax.stop_gradient(cost)
    solver = resolve_solver(solver)
    if solver in ("scipy", "auction-numba"):
        return _host_assign(cost, row_mask, col_mask, solver)
    square = _square_padded(cost, row_mask, col_mask)
    solve = _optax_square if solver == "optax" else _auction_square
    cols = jax.vmap(solve)(square)[:, :n]  # [B, N] column in the square problem
    valid = row_mask & (cols < m) & jnp.take_along_axis(col_mask, jnp.minimum(cols, m - 1), axis=1)
    return jnp.where(valid, cols, -1).astype(jnp.int32)


def _host_assign(cost: jax.Array, row_mask: jax.Array, col_mask: jax.Array, solver: str) -> jax.Array:
    out_type = jax.ShapeDtypeStruct(cost.shape[:-1], jnp.int32)
    host = functools.partial(_host, solve_pair=_scipy_pair if solver == "scipy" else _auction_numba_pair)
    return jax.pure_callback(host, out_type, cost, row_mask, col_mask, vmap_method="broadcast_all")


def _scipy_pair(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


def _auction_numba_pair(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular costs are padded to square with zero-cost dummies (a constant, so the optimum over
    the real pairs is unchanged); rows matched to dummies are dropped."""
    from pointset_cli.distances.auction_kernel import auction

    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    square = np.zeros((max(n, m),) * 2)
    square[:n, :m] = cost
    cols = auction(square, 1e-7 * float(np.abs(cost).max()))[:n]
    rows = np.flatnonzero(cols < m)
    return rows, cols[rows]


def _host(cost: np.ndarray, row_mask: np.ndarray, col_mask: np.ndarray, solve_pair) -> np.ndarray:
    lead = cost.shape[:-2]
    cost = np.asarray(cost, np.float64).reshape(-1, *cost.shape[-2:])  # scipy works in float64
    rmask = np.asarray(row_mask).reshape(cost.shape[:2])
    cmask = np.asarray(col_mask).reshape(cost.shape[0], cost.shape[2])
    out = np.full(cost.shape[:2], -1, np.int32)

    def solve(i: int) -> None:
        rows, cols = np.flatnonzero(rmask[i]), np.flatnonzero(cmask[i])
        r, c = solve_pair(cost[i][np.ix_(rows, cols)])
        out[i, rows[r]] = cols[c]

    # Both solvers release the GIL: pairs run on all cores.
    map_on_cores(solve, range(len(cost)))
    return out.reshape(*lead, -1)


def _square_padded(cost: jax.Array, row_mask: jax.Array, col_mask: jax.Array) -> jax.Array:
    """[B, P, P], P = max(N, M), whose optimum restricted to real rows and columns is the masked optimum.

    Real-real entries are shifted to [0, range]; a padding row costs 0 anywhere; a real row on a
    padding column costs range + 1, more than any swap onto a real column can save, so real rows
    take real columns whenever one is free.
    """
    b, n, m = cost.shape
    p = max(n, m)
    real = row_mask[:, :, None] & col_mask[:, None, :]
    lo = jnp.min(jnp.where(real, cost, jnp.inf), axis=(1, 2), keepdims=True)
    hi = jnp.max(jnp.where(real, cost, -jnp.inf), axis=(1, 2), keepdims=True)
    lo, hi = jnp.where(jnp.isfinite(lo), lo, 0.0), jnp.where(jnp.isfinite(hi), hi, 0.0)
    shifted = jnp.where(real, cost - lo, hi - lo + 1.0)
    shifted = jnp.where(row_mask[:, :, None], shifted, 0.0)
    return jnp.pad(shifted, ((0, 0), (0, p - n), (0, p - m)))


def _optax_square(cost: jax.Array) -> jax.Array:
    from optax.assignment import hungarian_algorithm

    rows, cols = hungarian_algorithm(cost)
    return jnp.zeros(cost.shape[0], jnp.int32).at[rows].set(cols.astype(jnp.int32))


def _auction_square(cost: jax.Array, scale_factor: float = 8.0, max_rounds: int = 200_000) -> jax.Array:
    """Auction with epsilon scaling for one square cost [P, P] -> column per row."""
    p = cost.shape[0]
    if p == 1:
        return jnp.zeros(1, jnp.int32)
    benefit = -cost
    span = jnp.max(cost) - jnp.min(cost)
    eps_final = jnp.maximum(jnp.max(jnp.abs(cost)), 1e-30) * 2.0**-18
    eps0 = jnp.maximum(span / 4.0, eps_final)
    n_phases = jnp.ceil(jnp.log(eps0 / eps_final) / jnp.log(scale_factor)).astype(jnp.int32) + 1
    arange = jnp.arange(p)

    def bid_round(state):
        owner, row_obj, prices, rounds, eps = state
        values = benefit - prices[None, :]
        top, idx = jax.lax.top_k(values, 2)
        j1 = idx[:, 0]
        bidding = row_obj < 0
        bid = jnp.where(bidding, prices[j1] + top[:, 0] - top[:, 1] + eps, -jnp.inf)
        best = jnp.full(p, -jnp.inf).at[j1].max(bid)
        winner = jnp.full(p, p).at[j1].min(jnp.where(bidding & (bid == best[j1]), arange, p))
        got = winner < p
        row_obj = row_obj.at[jnp.where(got & (owner >= 0), owner, p)].set(-1, mode="drop")
        row_obj = row_obj.at[jnp.where(got, winner, p)].set(arange, mode="drop")
        owner = jnp.where(got, winner, owner)
        prices = jnp.where(got, best, prices)
        return owner, row_obj, prices, rounds + 1, eps

    def phase(k, carry):
        prices, rounds, _ = carry
        eps = jnp.maximum(eps0 / scale_factor**k, eps_final)
        start = (jnp.full(p, -1), jnp.full(p, -1), prices, rounds, eps)
        _, row_obj, prices, rounds, _ = jax.lax.while_loop(
            lambda s: jnp.any(s[1] < 0) & (s[3] < max_rounds), bid_round, start
        )
        return prices, rounds, row_obj

    init = (jnp.zeros(p, cost.dtype), jnp.int32(0), jnp.full(p, -1))
    _, _, row_obj = jax.lax.fori_loop(0, n_phases, phase, init)
    return row_obj.astype(jnp.int32)
