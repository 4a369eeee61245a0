"""Exact nearest neighbours among sets without the distance of every pair, by bounds.

A query wants which of its candidates is nearest (ties: the lowest index), for some queries also
that distance, and for others only the group the nearest belongs to (1-NNA asks whether a set's
nearest is a sample or a reference). Each pair carries an interval [lo, hi] holding its distance: at first only a
cheap lower bound (`lower`), then, pair by pair as a query needs it, the next of `tiers`, each
tighter and dearer; the last tier solves the pair exactly (lo = hi). A query is answered when a
single candidate can still be nearest (every other one's lo exceeds its hi), or when every
candidate that can be is solved exactly (a tie, which np.argmin breaks by index); a query that
wants the distance also needs its nearest solved, and one that wants the group is answered as
soon as every candidate that can still be nearest is in one group.

The result is a matrix holding each pair's hi (its exact distance where solved, +inf where no
tier gave an upper bound): its row minima and np.argmin, ties included, are those of the
complete matrix for every query asked, and the minimum of a query that wants the distance is
exact. Tiers take index arrays (i < j, each pair once) and run in batches, one call per tier and
round, so the caller can spread a batch over the cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

# (rows [K], cols [K]) -> (lo [K], hi [K]): bounds of each pair's distance (hi may be +inf)
Tier = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
WANTS = ("nearest", "distance", "group")  # what a query asks for (see the module)
# A distance may be stored rounded (float32) a little below the bound proved for it: intervals are
# compared with this relative margin (and an absolute one given by the caller).
RTOL = 1e-5


@dataclasses.dataclass
class SearchCounts:
    pairs: int = 0  # distinct pairs the queries could need (what an all-pairs computation solves)
    per_tier: list[int] = dataclasses.field(default_factory=list)  # pairs given each tier; the last: solved


def nearest_by_bounds(
    lower: np.ndarray,
    queries: Sequence[tuple[int, np.ndarray, str]],
    tiers: Sequence[Tier],
    on_round: Callable[[int, int], None] | None = None,
    atol: float = 0.0,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, SearchCounts]:
    """Distances [M, M] float32 (symmetric; see the module) that answer every query exactly.

    lower [M, M]: symmetric lower bounds of the distances. queries: (q, candidates [M] bool, one
    of WANTS), q's nearest among the candidates (q itself excluded). tiers: see the module; the
    last must be exact. on_round(pairs settled, pairs) after each round: a pair is settled once no
    unanswered query may still need it tightened. groups [M] int: each set's group, which
    "group" queries ask for (np.argmin of such a query's row then lies in the right group).
    """
    m = len(lower)
    lo = np.array(lower, np.float64)
    hi = np.full((m, m), np.inf)
    grade = np.zeros((m, m), np.int8)  # tiers applied to each pair
    rows = np.array([q for q, _, _ in queries], np.int64)
    cands = np.stack([np.asarray(c, bool) for _, c, _ in queries]) if queries else np.zeros((0, m), bool)
    cands[np.arange(len(rows)), rows] = False
    wants = np.array([WANTS.index(w) for _, _, w in queries], np.int64)
    wants_value, wants_group = wants == WANTS.index("distance"), wants == WANTS.index("group")
    if wants_group.any() and groups is None:
        raise ValueError("queries that want the group need `groups`")
    groups = np.zeros(m, np.int64) if groups is None else np.asarray(groups, np.int64)
    counts = SearchCounts(pairs=_distinct_pairs(rows, cands, m), per_tier=[0] * len(tiers))
    last = len(tiers)
    active = cands.any(1)

    while active.any():
        qs = np.flatnonzero(active)
        c, r = cands[qs], rows[qs]
        q_lo, q_hi, q_grade = lo[r], hi[r], grade[r]  # [Q, M]
        held = np.where(c, q_hi, np.inf)  # [Q, M] upper bounds of the candidates
        best, leader = held.min(1), held.argmin(1)  # [Q]: the best upper bound and who holds it
        contenders = c & (q_lo <= best[:, None] * (1 + RTOL) + atol)
        open_ = contenders & (q_grade < last)
        single = contenders.sum(1) == 1
        # Every candidate that can still be nearest in one group: np.argmin of the row is in it.
        one_group = (np.where(contenders, groups, np.iinfo(np.int64).max).min(1)
                     == np.where(contenders, groups, np.iinfo(np.int64).min).max(1))
        answered = ~open_.any(1) | (single & ~wants_value[qs]) | (one_group & wants_group[qs])
        active[qs[answered]] = False
        ask = ~answered
        # Until a query has an upper bound, its nearest-looking contender (smallest lo) climbs the
        # tiers, to get one. Then the cheapest tightening comes first: the contender with the fewest
        # tiers (smallest lo among them), so most rivals are ruled out by cheap bounds before any
        # pair is solved. A pair ruled out is never looked at again.
        span = 1.0 + float(np.max(q_lo[ask], initial=0.0, where=np.isfinite(q_lo[ask])))
        key = np.where(np.isfinite(best[ask])[:, None], q_grade[ask] * span + q_lo[ask], q_lo[ask])
        pick = np.where(_worth_tightening(open_[ask], leader[ask], best[ask], groups, wants_group[qs[ask]]),
                        key, np.inf).argmin(1)
        i, j = np.minimum(r[ask], pick), np.maximum(r[ask], pick)
        flat = np.unique(i * m + j)
        i, j = flat // m, flat % m
        levels = grade[i, j]  # each picked pair climbs one tier this round
        for level in range(last):
            at = levels == level
            if at.any():
                new_lo, new_hi = tiers[level](i[at], j[at])
                ii, jj = i[at], j[at]
                if level < last - 1:
                    new_lo, new_hi = np.maximum(lo[ii, jj], new_lo), np.minimum(hi[ii, jj], new_hi)
                lo[ii, jj] = lo[jj, ii] = new_lo  # solved: the stored value itself, whatever the bounds said
                hi[ii, jj] = hi[jj, ii] = new_hi
                grade[ii, jj] = grade[jj, ii] = level + 1
                counts.per_tier[level] += len(ii)
        if on_round is not None:  # pairs no query still needs: ruled out, solved, or of answered queries
            on_round(counts.pairs - _distinct_pairs(r[ask], open_[ask], m), counts.pairs)
    if on_round is not None:
        on_round(counts.pairs, counts.pairs)
    return hi.astype(np.float32), counts


def _worth_tightening(open_: np.ndarray, leader: np.ndarray, best: np.ndarray, groups: np.ndarray,
                      wants_group: np.ndarray) -> np.ndarray:
    """open_ [Q, M], narrowed for queries that want the group and have an upper bound (best [Q]
    finite): to the leader [Q] (the candidate holding it) and the contenders of other groups, whose
    bounds decide the answer. A query with nothing left there keeps all its open contenders."""
    rival = groups[None, :] != groups[leader][:, None]
    rival[np.arange(len(leader)), leader] = True
    narrowed = open_ & rival
    use = wants_group & np.isfinite(best) & narrowed.any(1)
    return np.where(use[:, None], narrowed, open_)


def exact_tier(solve: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Tier:
    """A tier from an exact solver: lo = hi = the solved distance (rounded to float32 as stored)."""
    def tier(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value = np.asarray(solve(i, j), np.float32).astype(np.float64)
        return value, value

    return tier


def lower_tier(bound: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Tier:
    """A tier from a lower bound alone (no upper bound)."""
    def tier(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(bound(i, j), np.float64), np.full(len(i), np.inf)

    return tier


def _distinct_pairs(rows: np.ndarray, wanted: np.ndarray, m: int) -> int:
    """How many distinct pairs {q, c} the queries `rows` [Q] want (wanted [Q, M] bool, q's own column false)."""
    need = np.zeros((m, m), bool)
    q, c = np.nonzero(wanted)
    need[np.minimum(rows[q], c), np.maximum(rows[q], c)] = True
    return int(need.sum())
