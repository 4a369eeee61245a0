"""Exact nearest neighbours among sets without the distance of every pair, by lower bounds.

A query wants the smallest distance to one of its candidates and which candidate has it (ties:
the lowest index). Every candidate whose lower bound does not exceed the best distance found so
far is solved exactly, cheapest bound first; the rest cannot be nearer, nor tie. The result is a
distance matrix that holds the exact value of every solved pair and +inf elsewhere, so a row's
minimum and its np.argmin, ties included, are those of the complete matrix.

Bounds come in two grades: `lower` for every pair up front (cheap), and `tighter(rows, cols)`
computed only for the pairs `lower` cannot rule out. `solve(rows, cols)` gives exact distances
(rows < cols: each pair is solved once, in that order); both take index arrays and run in
batches, one call per round, so the caller can spread a batch over the cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

Pairs = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows [K], cols [K]) -> values [K]
# A solved distance may be rounded (float32) below the exact value its bound holds for: a bound
# within this relative margin of the best still gets the pair solved.
RTOL = 1e-5


@dataclasses.dataclass
class SearchCounts:
    pairs: int = 0  # distinct pairs the queries could need (what an all-pairs computation solves)
    tighter: int = 0  # pairs given the tighter bound
    solved: int = 0  # pairs solved exactly


def nearest_by_bounds(
    lower: np.ndarray,
    queries: Sequence[tuple[int, np.ndarray]],
    solve: Pairs,
    tighter: Pairs | None = None,
    on_round: Callable[[int, int], None] | None = None,
    atol: float = 0.0,
) -> tuple[np.ndarray, SearchCounts]:
    """Distances [M, M] float32 (+inf where not solved, symmetric) that answer every query exactly.

    lower [M, M]: symmetric lower bounds of the distance. queries: (q, candidates [M] bool), q's
    nearest among the candidates (q itself excluded). A pair is solved when its bound is within
    best * (1 + RTOL) + atol (atol: the bounds' rounding, in the distance's units; it matters for
    ties at distance 0). on_round(queries answered, queries) after each round.
    """
    m = len(lower)
    dist = np.full((m, m), np.inf, np.float32)
    solved = np.zeros((m, m), bool)
    bound = np.array(lower, np.float64)  # raised to the tighter bound where that is known
    tight = np.zeros((m, m), bool)
    rows = np.array([q for q, _ in queries], np.int64)
    cands = np.stack([np.asarray(c, bool) for _, c in queries]) if queries else np.zeros((0, m), bool)
    cands[np.arange(len(rows)), rows] = False
    counts = SearchCounts(pairs=int(np.triu(_either(rows, cands, m), 1).sum()))
    active = cands.any(1)

    def run(kind: str, pick: np.ndarray) -> None:
        i, j = np.minimum(rows[pick[:, 0]], pick[:, 1]), np.maximum(rows[pick[:, 0]], pick[:, 1])
        i, j = _unique_pairs(i, j, m)
        if kind == "solve":
            values = np.asarray(solve(i, j), np.float32)
            dist[i, j] = dist[j, i] = values
            solved[i, j] = solved[j, i] = True
            counts.solved += len(i)
        else:
            values = np.asarray(tighter(i, j), np.float64)
            bound[i, j] = bound[j, i] = np.maximum(bound[i, j], values)
            tight[i, j] = tight[j, i] = True
            counts.tighter += len(i)

    while active.any():
        qs = np.flatnonzero(active)
        best = np.where(cands[qs], dist[rows[qs]], np.inf).min(1)  # [Q]
        limit = best.astype(np.float64) * (1 + RTOL) + atol
        open_ = cands[qs] & ~solved[rows[qs]] & (bound[rows[qs]] <= limit[:, None])  # [Q, M]
        if tighter is not None:
            loose = open_ & ~tight[rows[qs]]
            # While a query has no distance yet (best = inf), its cheapest candidate is solved
            # directly: tightening every pair against an infinite best would tighten them all.
            loose &= np.isfinite(best)[:, None]
            if loose.any():
                run("tighter", np.stack([qs[np.nonzero(loose)[0]], np.nonzero(loose)[1]], 1))
                continue
        if not open_.any(1).any():
            active[qs] = False
            break
        done = ~open_.any(1)
        active[qs[done]] = False
        keep = ~done
        # One pair per query per round, its smallest bound first: solving it may rule out the rest.
        choice = np.where(open_[keep], bound[rows[qs[keep]]], np.inf).argmin(1)
        run("solve", np.stack([qs[keep], choice], 1))
        if on_round is not None:
            on_round(int((~active).sum()), len(rows))
    if on_round is not None:
        on_round(len(rows), len(rows))
    return dist, counts


def _either(rows: np.ndarray, cands: np.ndarray, m: int) -> np.ndarray:
    """[M, M] bool: the pairs some query could need, in both orders."""
    need = np.zeros((m, m), bool)
    for q, c in zip(rows, cands, strict=True):
        need[q] |= c
    return need | need.T


def _unique_pairs(i: np.ndarray, j: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    flat = np.unique(i * m + j)
    return flat // m, flat % m
