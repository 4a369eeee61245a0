"""Set metrics comparable with the literature (PointFlow's definitions, see DESIGN.md).

Inputs are NumPy or JAX arrays of padded sets [M, N, D] with optional bool masks [M, N]; outputs
are NumPy arrays or dicts of plain Python floats. Distances are in the squared (CD) or plain (EMD)
units of the input coordinates: state the normalisation the sets were in when you report them.

- CD(X, Y) = mean_x min_y |x - y|^2 + mean_y min_x |x - y|^2 (not halved).
- EMD(X, Y) = (1/N) sum_i |x_i - y_pi(i)|, Euclidean cost, optimal matching, equal sizes. The
  all-pairs default ("auto" -> "auction-numba" when numba imports) is within `emd_error_bound` of
  the exact value; solver="scipy" is the exact reference.
- JSD: PointFlow's occupancy grid of JSD_RESOLUTION^D cells over [-0.5, 0.5]^D, kept inside the ball
  of radius 0.5 (D = 2: a 28 x 28 disc); a point outside the ball counts in the nearest edge cell.
  Sets in other units (`--normalize sphere` is radius 1, MNIST digits are [0, 1]^2) need the
  "pointflow" protocol: one shift and scale, from the references, that fits them into the ball.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

GENERATION_METRICS = ("mmd_cd", "mmd_emd", "cov_cd", "cov_emd", "nna_cd", "nna_emd", "jsd")
# What each raw value is measured in ("units" = the coordinates' units, as the sets were given).
METRIC_UNITS = {
    "mmd_cd": "squared units", "mmd_emd": "units", "cov_cd": "fraction", "cov_emd": "fraction",
    "nna_cd": "fraction", "nna_emd": "fraction", "jsd": "bits", "cd": "squared units", "emd": "units",
    "cd_own_size": "squared units", "cardinality_accuracy": "fraction", "retrieval_accuracy": "fraction",
    "label_nn_cd": "fraction",
}
JSD_RESOLUTION = 28  # cells per axis, as PointFlow
GRID_RADIUS = 0.5  # the JSD grid covers the ball of this radius around the origin
JSD_PROTOCOLS = ("raw", "pointflow")  # sets as given; or fitted into the grid's ball (see grid_fit)
# How generation metrics find each set's EMD-nearest set: "bounds" solves only the pairs that lower
# bounds cannot rule out (the same results, see _emd_by_bounds); "all" solves every pair.
EMD_SEARCHES = ("bounds", "all")
# The coarse auction's eps (relative to the bounding-box diagonal) that brackets a pair's EMD in the
# bounds search: half an exact solve, and tight enough to tell most neighbours apart (1e-4 and
# 4e-3 were slower on ModelNet chairs: dearer brackets, or more pairs left to solve).
COARSE_EPS = 1e-3
Progress = Callable[[int, int], None]
PhaseProgress = Callable[[str, int, int], None]  # (phase, done, total): one count per named pass


def _as_sets(points, mask) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, np.float32)
    if points.ndim != 3:
        raise ValueError(f"expected sets [M, N, D], got shape {points.shape}")
    mask = np.ones(points.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    return points, mask


@functools.cache
def _pair_fn(kind: str, solver: str):
    import jax

    from pointset_cli import losses

    if kind == "cd":
        return jax.jit(lambda x, xm, y, ym: losses.chamfer(x, y, xm, ym))
    return jax.jit(lambda x, xm, y, ym: losses.hungarian(x, y, xm, ym, metric="euclidean", solver=solver))


def _pairwise(kind, a, b, a_mask, b_mask, chunk, progress, solver="scipy") -> np.ndarray:
    """Distance for every pair (i, j) -> [Ma, Mb], `chunk` pairs per call (bounded memory).

    When b is a (same object) only pairs i < j are computed; the matrix is mirrored, diagonal 0.
    """
    symmetric = b is a and b_mask is a_mask
    a, a_mask = _as_sets(a, a_mask)
    b, b_mask = (a, a_mask) if symmetric else _as_sets(b, b_mask)
    if kind == "emd":
        _check_equal_sizes(a_mask, b_mask)
    ii, jj = np.triu_indices(len(a), 1) if symmetric else np.divmod(np.arange(len(a) * len(b)), len(b))
    out = np.zeros((len(a), len(b)), np.float32)
    if progress is not None:
        progress(0, len(ii))  # the pass shows from its start (compiling)
    out[ii, jj] = _pair_values(kind, a, a_mask, b, b_mask, ii, jj, solver, chunk, progress)
    return out + out.T if symmetric else out


def _pair_values(kind, a, a_mask, b, b_mask, ii, jj, solver, chunk, progress=None) -> np.ndarray:
    """Distance of a[ii[k]] vs b[jj[k]] for every k -> [K]. Pass b as a itself for pairs within one
    collection. A pair's value depends only on the pair and on the collections (the auction's
    tolerance is set by their extent), so any subset of the pairs gets the all-pairs values."""
    if kind == "emd" and solver == "auction-numba":
        from pointset_cli.distances.auction_kernel import pairwise_emd_host

        eps = emd_error_bound(solver, a[a_mask], b[b_mask])
        return pairwise_emd_host(a, b, a_mask, b_mask, ii, jj, eps, progress, chunk)
    fn = _pair_fn(kind, solver)
    total = len(ii)
    values = np.empty(total, np.float32)
    for start in range(0, total, chunk):
        sel = np.arange(start, min(start + chunk, total))
        padded = np.pad(sel, (0, chunk - len(sel)), mode="edge")  # one compiled shape for every call
        i, j = ii[padded], jj[padded]
        values[sel] = np.asarray(fn(a[i], a_mask[i], b[j], b_mask[j]))[: len(sel)]
        if progress is not None:
            progress(min(start + chunk, total), total)
    return values


def _check_equal_sizes(a_mask: np.ndarray, b_mask: np.ndarray) -> None:
    sizes = np.unique(np.concatenate([a_mask.sum(1), b_mask.sum(1)]))
    if len(sizes) > 1:
        raise ValueError(f"EMD needs sets of equal size; got sizes {sizes.min()}..{sizes.max()}")


def pairwise_cd(a, b, a_mask=None, b_mask=None, *, chunk: int = 64, progress: Progress | None = None) -> np.ndarray:
    """Chamfer distance (squared units) between every set of a [Ma, N, D] and of b [Mb, M, D] -> [Ma, Mb]."""
    return _pairwise("cd", a, b, a_mask, b_mask, chunk, progress)


def pairwise_emd(
    a, b, a_mask=None, b_mask=None, *, solver: str = "auto", chunk: int = 16, progress: Progress | None = None
) -> np.ndarray:
    """EMD (input units) between every set of a and of b -> [Ma, Mb]; all sizes must be equal
    (ValueError otherwise). solver: see pointset_cli.distances.assignment ("auto": resolve_emd_solver); each
    entry is within emd_error_bound(solver, a, b) of the exact EMD."""
    return _pairwise("emd", a, b, a_mask, b_mask, chunk, progress, resolve_emd_solver(solver))


def resolve_emd_solver(solver: str) -> str:
    """The solver "auto" stands for in all-pairs EMD: "auction-numba" (fastest on CPU, bounded error)
    when numba imports, else pointset_cli.distances.assignment's "auto" (exact)."""
    from pointset_cli.distances.nearest_kernel import available
    from pointset_cli.distances.assignment import resolve_solver

    if solver == "auto" and available():
        return "auction-numba"
    return resolve_solver(solver)


def emd_error_bound(solver: str, *point_arrays) -> float:
    """Largest possible |computed - exact| EMD (input units) of `solver` on sets drawn from these
    points [..., D] (real points only): 0 for the exact solvers; for the auctions their eps_final
    (the total cost is within N * eps_final), relative to the bounding-box diagonal, which bounds
    every pairwise distance."""
    solver = resolve_emd_solver(solver)
    if solver in ("scipy", "optax"):
        return 0.0
    # matching's JAX auction stops at 2^-18 of the largest cost; the numba one at 1e-7 of the diagonal.
    return _diagonal(*point_arrays) * (2.0**-18 if solver == "auction" else 1e-7)


def _diagonal(*point_arrays) -> float:
    """The bounding-box diagonal of all these points [..., D] (0 for none): it bounds every distance."""
    points = np.concatenate([np.asarray(p, np.float64).reshape(-1, p.shape[-1]) for p in point_arrays])
    return float(np.linalg.norm(points.max(0) - points.min(0))) if len(points) else 0.0


def mmd(d_sr: np.ndarray) -> float:
    """Minimum matching distance: mean over references of the distance to the closest sample.

    d_sr [n_samples, n_refs]."""
    return float(np.mean(np.min(d_sr, axis=0)))


def coverage(d_sr: np.ndarray) -> float:
    """Fraction of references that are the nearest reference of at least one sample (in [0, 1])."""
    return float(len(np.unique(np.argmin(d_sr, axis=1))) / d_sr.shape[1])


def nearest_label_accuracy(d_sr: np.ndarray, sample_labels: np.ndarray, ref_labels: np.ndarray) -> float:
    """Share of samples whose nearest reference (d_sr [Ms, Mr]; ties to the lower index) has the
    sample's label [Ms] (ref_labels [Mr]), in [0, 1]: a 1-NN classifier's verdict on labelled samples."""
    return float(np.mean(np.asarray(ref_labels)[np.argmin(d_sr, axis=1)] == np.asarray(sample_labels)))


def one_nna(d_ss: np.ndarray, d_sr: np.ndarray, d_rr: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy over samples and references together, in [0, 1].

    Each set is classified by its nearest other set in the joint collection [samples..., refs...];
    ties go to the lowest index in that order (np.argmin), so results are deterministic. 0.5 is
    ideal; 1.0 means the collections are told apart perfectly.
    """
    joint = np.block([[d_ss, d_sr], [d_sr.T, d_rr]]).astype(np.float64)
    np.fill_diagonal(joint, np.inf)
    labels = np.concatenate([np.ones(len(d_ss), bool), np.zeros(len(d_rr), bool)])
    return float(np.mean(labels[np.argmin(joint, axis=1)] == labels))


def _occupancy(points: np.ndarray, mask: np.ndarray, resolution: int) -> np.ndarray:
    """PointFlow's grid counts: every real point adds 1 to the nearest cell centre of a resolution^D
    grid over [-0.5, 0.5]^D clipped to the ball of radius 0.5."""
    from scipy.spatial import cKDTree

    d = points.shape[-1]
    axis = np.linspace(-GRID_RADIUS, GRID_RADIUS, resolution)
    grid = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), -1).reshape(-1, d)
    grid = grid[np.linalg.norm(grid, axis=1) <= GRID_RADIUS]
    _, cell = cKDTree(grid).query(points[mask])
    return np.bincount(cell, minlength=len(grid)).astype(np.float64)


def jsd(samples, refs, resolution: int = JSD_RESOLUTION, *, sample_mask=None, ref_mask=None) -> float:
    """Jensen-Shannon divergence (bits, in [0, 1]) between the occupancy grids of two collections
    [M, N, D], as PointFlow computes it (sets expected inside the ball of radius 0.5 around the
    origin: a disc of resolution x resolution cells for D = 2; outside_grid says how many are not)."""
    from scipy.stats import entropy

    s, s_mask = _as_sets(samples, sample_mask)
    r, r_mask = _as_sets(refs, ref_mask)
    p = _occupancy(s, s_mask, resolution)
    q = _occupancy(r, r_mask, resolution)
    p, q = p / p.sum(), q / q.sum()
    return float(entropy((p + q) / 2, base=2) - (entropy(p, base=2) + entropy(q, base=2)) / 2)


def outside_grid(points, mask=None) -> float:
    """Share of the real points of sets [M, N, D] outside the JSD grid's ball (radius 0.5): JSD
    counts them in the nearest edge cell. 0.0 for no points."""
    points, mask = _as_sets(points, mask)
    real = points[mask]
    return float(np.mean(np.linalg.norm(real, axis=1) > GRID_RADIUS)) if len(real) else 0.0


def grid_fit(refs, ref_mask=None) -> tuple[np.ndarray, float]:
    """(shift [D], factor) of the "pointflow" JSD protocol: x -> (x - shift) * factor takes the
    centre of the references' bounding box to the origin and their farthest point from it to
    radius 0.5, so every reference lies in the grid's ball (sphere-normalised sets: factor 0.5)."""
    refs, ref_mask = _as_sets(refs, ref_mask)
    real = refs[ref_mask].astype(np.float64)
    shift = (real.min(0) + real.max(0)) / 2
    reach = float(np.linalg.norm(real - shift, axis=1).max())
    return shift, GRID_RADIUS / reach if reach > 0 else 1.0


def subsample(count: int, max_sets: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most max_sets of count sets, drawn without replacement from seed."""
    if max_sets is None or max_sets >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, max_sets, replace=False))


def generation_metrics(
    samples,
    refs,
    *,
    sample_mask=None,
    ref_mask=None,
    metrics: Sequence[str] = GENERATION_METRICS,
    seed: int = 0,
    max_sets: int | None = None,
    emd_solver: str = "auto",
    emd_search: str = "bounds",
    jsd_protocol: str = "raw",
    progress: PhaseProgress | None = None,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """MMD, COV, 1-NNA (CD and EMD) and JSD of generated samples [Ms, N, D] against refs [Mr, N, D].

    Returns plain floats: mmd_cd (squared input units), mmd_emd (input units), cov_*, nna_* (fractions
    in [0, 1]), jsd (bits), plus n_samples, n_refs, n_points (largest set), emd_solver and
    emd_error_bound (input units: every EMD entered is within it of the exact value, so mmd_emd
    is too). Only the requested metrics are computed. max_sets subsamples each collection with `seed`.
    With jsd: jsd_protocol ("raw": the sets as given; "pointflow": both moved by grid_fit of the
    references), jsd_shift [D] and jsd_scale (that map), jsd_resolution, and jsd_outside_samples /
    jsd_outside_refs (outside_grid after the map). progress gets ("CD pairs" | "EMD pairs", done,
    total): one count over all the matrices of each kind (with emd_search "bounds", EMD pairs
    count as done once ruled out or solved), and emd_pairs (what all pairs would be),
    emd_pairs_bounded, emd_pairs_bracketed and emd_pairs_solved (how many got the dual bound, a
    coarse auction's bracket, an exact solve) are returned. With `labels` (the labels the samples were
    asked for [Ms], the references' [Mr]) and a CD metric, label_nn_cd is nearest_label_accuracy by CD.
    """
    unknown = sorted(set(metrics) - set(GENERATION_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; valid: {', '.join(GENERATION_METRICS)}")
    if jsd_protocol not in JSD_PROTOCOLS:
        raise ValueError(f"unknown JSD protocol {jsd_protocol!r}; valid: {', '.join(JSD_PROTOCOLS)}")
    if emd_search not in EMD_SEARCHES:
        raise ValueError(f"unknown EMD search {emd_search!r}; valid: {', '.join(EMD_SEARCHES)}")
    s, s_mask = _as_sets(samples, sample_mask)
    r, r_mask = _as_sets(refs, ref_mask)
    keep_s, keep_r = subsample(len(s), max_sets, seed), subsample(len(r), max_sets, seed + 1)
    s, s_mask, r, r_mask = s[keep_s], s_mask[keep_s], r[keep_r], r_mask[keep_r]
    out: dict = {"n_samples": len(s), "n_refs": len(r), "n_points": int(max(s_mask.sum(1).max(), r_mask.sum(1).max()))}
    jobs = _distance_jobs(metrics, len(s), len(r))
    tracker = _ProgressTracker(progress, distance_pairs(metrics, len(s), len(r)))
    mats: dict = {}
    if emd_search == "bounds" and any(kind == "emd" for kind, _, _ in jobs):
        solver = resolve_emd_solver(emd_solver)
        report = None if progress is None else functools.partial(progress, "EMD pairs")
        found, counts = _emd_by_bounds(s, s_mask, r, r_mask, metrics, solver, report)
        mats.update(found)
        dual, coarse, solved = counts.per_tier
        out.update(emd_pairs=counts.pairs, emd_pairs_bounded=dual, emd_pairs_bracketed=coarse, emd_pairs_solved=solved)
        jobs = [job for job in jobs if job[0] != "emd"]
    for kind, which, _ in jobs:
        a, am, b, bm = {"sr": (s, s_mask, r, r_mask), "ss": (s, s_mask, s, s_mask), "rr": (r, r_mask, r, r_mask)}[which]
        fn = pairwise_cd if kind == "cd" else _emd_with(emd_solver)
        mats[kind, which] = fn(a, b, am, bm, progress=tracker.stage(kind))
    if labels is not None and ("cd", "sr") in mats:
        out["label_nn_cd"] = nearest_label_accuracy(mats["cd", "sr"], np.asarray(labels[0])[keep_s],
                                                    np.asarray(labels[1])[keep_r])
    for kind in ("cd", "emd"):
        if f"mmd_{kind}" in metrics:
            out[f"mmd_{kind}"] = mmd(mats[kind, "sr"])
        if f"cov_{kind}" in metrics:
            out[f"cov_{kind}"] = coverage(mats[kind, "sr"])
        if f"nna_{kind}" in metrics:
            out[f"nna_{kind}"] = one_nna(mats[kind, "ss"], mats[kind, "sr"], mats[kind, "rr"])
    if "jsd" in metrics:
        shift, factor = grid_fit(r, r_mask) if jsd_protocol == "pointflow" else (np.zeros(s.shape[-1]), 1.0)
        s_grid, r_grid = (s - shift) * factor, (r - shift) * factor
        out.update(jsd=jsd(s_grid, r_grid, sample_mask=s_mask, ref_mask=r_mask), jsd_protocol=jsd_protocol,
                   jsd_shift=np.asarray(shift).tolist(), jsd_scale=float(factor), jsd_resolution=JSD_RESOLUTION,
                   jsd_outside_samples=outside_grid(s_grid, s_mask), jsd_outside_refs=outside_grid(r_grid, r_mask))
    if any(m.endswith("_emd") for m in metrics):
        out["emd_solver"] = resolve_emd_solver(emd_solver)
        out["emd_error_bound"] = emd_error_bound(emd_solver, s[s_mask], r[r_mask])
    return out


def _emd_by_bounds(s, s_mask, r, r_mask, metrics: Sequence[str], solver: str,
                   progress: Progress | None) -> tuple[dict, Any]:
    """The EMD matrices {("emd", "sr" | "ss" | "rr"): ...} that mmd, coverage and one_nna need,
    without solving every pair (distances.nearest_sets): their minima and argmins are those of the
    all-pairs matrices wherever these metrics look (for 1-NNA: the collection of each row's argmin). Pairs are ruled out by the projection bound,
    then the reduction dual, then a coarse auction's bracket; the rest are solved exactly, each as
    the all-pairs matrices solve it (same orientation, same solver tolerance).
    """
    from pointset_cli.distances import emd_bounds
    from pointset_cli.distances.nearest_sets import exact_tier, lower_tier, nearest_by_bounds

    _check_equal_sizes(s_mask, r_mask)
    n_s, n_r = len(s), len(r)
    real = emd_bounds.real_points(np.concatenate([s, r]), np.concatenate([s_mask, r_mask]))  # [Ms + Mr, n, D]
    in_s = np.arange(n_s + n_r) < n_s
    queries = []
    if "cov_emd" in metrics:  # each sample's nearest reference
        queries += [(i, ~in_s, "nearest") for i in range(n_s)]
    if "mmd_emd" in metrics:  # each reference's nearest sample, and that distance
        queries += [(n_s + j, in_s, "distance") for j in range(n_r)]
    if "nna_emd" in metrics:  # whether each set's nearest other set is a sample or a reference
        queries += [(k, np.ones(n_s + n_r, bool), "group") for k in range(n_s + n_r)]

    def solve(i: np.ndarray, j: np.ndarray) -> np.ndarray:  # i < j in the joint order [s..., r...]
        values = np.empty(len(i))
        for which, sel in (("ss", j < n_s), ("sr", (i < n_s) & (j >= n_s)), ("rr", i >= n_s)):
            a, am, b, bm, ii, jj = {"ss": (s, s_mask, s, s_mask, i, j), "sr": (s, s_mask, r, r_mask, i, j - n_s),
                                    "rr": (r, r_mask, r, r_mask, i - n_s, j - n_s)}[which]
            if sel.any():  # within one collection b is a, as in the all-pairs matrix
                values[sel] = _pair_values("emd", a, am, b, bm, ii[sel], jj[sel], solver, chunk=16)
        return values

    diagonal = _diagonal(real)
    # The solver's value may exceed the optimum by its error bound: a bracket's top is raised by it.
    slack = emd_error_bound(solver, real)

    def coarse(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = emd_bounds.brackets(real, i, j, COARSE_EPS * diagonal)
        return low, high + slack

    tiers = [lower_tier(lambda i, j: emd_bounds.dual_bounds(real, i, j)), coarse, exact_tier(solve)]
    dist, counts = nearest_by_bounds(emd_bounds.projection_bounds(real), queries, tiers, progress,
                                     atol=1e-6 * diagonal, groups=(~in_s).astype(np.int64))
    return {("emd", "ss"): dist[:n_s, :n_s], ("emd", "sr"): dist[:n_s, n_s:], ("emd", "rr"): dist[n_s:, n_s:]}, counts


def _emd_with(solver: str):
    return lambda a, b, am, bm, progress: pairwise_emd(a, b, am, bm, solver=solver, progress=progress)


def _distance_jobs(metrics: Sequence[str], n_s: int, n_r: int) -> list[tuple[str, str, int]]:
    """(cd|emd, sr|ss|rr, number of pairs) for the matrices the requested metrics need."""
    sizes = {"sr": n_s * n_r, "ss": n_s * (n_s - 1) // 2, "rr": n_r * (n_r - 1) // 2}
    jobs = []
    for kind in ("cd", "emd"):
        needs_sr = any(f"{m}_{kind}" in metrics for m in ("mmd", "cov", "nna"))
        for which in ("sr", "ss", "rr") if f"nna_{kind}" in metrics else ("sr",) if needs_sr else ():
            jobs.append((kind, which, sizes[which]))
    return jobs


def distance_pairs(metrics: Sequence[str], n_s: int, n_r: int) -> dict[str, int]:
    """{"cd": pairs, "emd": pairs} that generation_metrics computes for these metrics and sizes."""
    jobs = _distance_jobs(metrics, n_s, n_r)
    return {kind: sum(n for k, _, n in jobs if k == kind) for kind in ("cd", "emd")}


class _ProgressTracker:
    """Turns per-matrix progress into one running count per kind ("CD pairs", "EMD pairs") over
    that kind's matrices, so a count never goes back."""

    def __init__(self, progress: PhaseProgress | None, totals: dict[str, int]) -> None:
        self.progress, self.totals = progress, totals
        self.done = dict.fromkeys(totals, 0)

    def stage(self, kind: str) -> Progress | None:
        if self.progress is None:
            return None
        offset, phase = self.done[kind], f"{kind.upper()} pairs"

        def report(n_done: int, n_total: int) -> None:
            self.done[kind] = offset + n_done
            self.progress(phase, self.done[kind], self.totals[kind])

        return report


def paired_chamfer(x, y, x_mask=None, y_mask=None) -> np.ndarray:
    """CD (squared units) between matching sets x[i] [N, D] and y[i] [S, D] -> [b] float64."""
    x, x_mask = _as_sets(x, x_mask)
    y, y_mask = _as_sets(y, y_mask)
    # The same cached jitted function as the all-pairs path: one compile per shape, not eager dispatch.
    return np.asarray(_pair_fn("cd", "")(x, x_mask, y, y_mask), np.float64)


def paired_emd(x, y, x_mask=None, y_mask=None, *, solver: str = "auto", chunk: int = 64,
               progress: Progress | None = None) -> np.ndarray:
    """EMD (input units) between matching sets x[i] [N, D] and y[i] [S, D] of equal size -> [b]
    (solver: pointset_cli.distances.assignment's, "auto" is exact on CPU; or "auction-numba").
    `chunk` pairs at a time: each holds an [N, S] cost matrix (a whole ModelNet test split at once
    was 13 GB); progress(done, total) counts pairs."""
    x, x_mask = _as_sets(x, x_mask)
    y, y_mask = _as_sets(y, y_mask)
    pairs = np.arange(len(x))
    return _pair_values("emd", x, x_mask, y, y_mask, pairs, pairs, solver, chunk, progress).astype(np.float64)


def reconstruction_metrics(x, y, x_mask=None, y_mask=None, *, emd_solver: str = "auto", per_pair: bool = False) -> dict:
    """CD and EMD between matching sets x[i] and y[i], averaged over pairs.

    cd: mean CD (squared units) over all pairs; emd: mean exact EMD (input units) over the pairs of
    equal size only (emd_pairs says how many; NaN when none; emd_solver names the solver "auto"
    stood for). per_pair adds cd_per_pair and emd_per_pair lists (NaN where sizes differ).
    """
    from pointset_cli.distances.assignment import resolve_solver

    x, x_mask = _as_sets(x, x_mask)
    y, y_mask = _as_sets(y, y_mask)
    cd = paired_chamfer(x, y, x_mask, y_mask)
    emd = np.full(len(x), np.nan)
    equal = x_mask.sum(1) == y_mask.sum(1)
    if equal.any():
        emd[equal] = paired_emd(x[equal], y[equal], x_mask[equal], y_mask[equal], solver=emd_solver)
    out = {"cd": float(cd.mean()), "emd": float(emd[equal].mean()) if equal.any() else float("nan"), "emd_pairs": int(equal.sum()),
           "emd_solver": resolve_solver(emd_solver)}
    if per_pair:
        out["cd_per_pair"], out["emd_per_pair"] = cd.tolist(), emd.tolist()
    return out


def retrieval_accuracy(d_ri: np.ndarray) -> float:
    """Share of reconstructions strictly nearer their own input than any other: d_ri [M, M] with
    d_ri[i, j] = distance(reconstruction i, input j). A reconstruction that ignores its input (or
    ties with another input) does not count. In [0, 1]; NaN for no sets."""
    d = np.asarray(d_ri, np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"expected a square distance matrix, got shape {d.shape}")
    if not len(d):
        return float("nan")
    others = np.where(np.eye(len(d), dtype=bool), np.inf, d).min(axis=1)
    return float(np.mean(np.diag(d) < others)) if len(d) > 1 else 1.0


def cardinality_accuracy(pred_sizes, true_sizes) -> float:
    """Fraction of sets whose predicted number of points equals the true one, in [0, 1]."""
    pred, true = np.asarray(pred_sizes), np.asarray(true_sizes)
    if pred.shape != true.shape:
        raise ValueError(f"size arrays differ in shape: {pred.shape} vs {true.shape}")
    return float(np.mean(pred == true)) if pred.size else float("nan")


FSCORE_TAU = 0.01  # default threshold: this fraction of each target's bounding-box diagonal
# nearest_shapes fills at most this many one-sided Chamfer entries at a time (inputs x candidates):
# about 24 MiB of pair indices and values, whatever the number of inputs.
NEAREST_BLOCK = 1 << 20


def _chunks(total: int, chunk: int, progress: Progress | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rows, padded) for consecutive chunks of range(total): padded repeats the last row up to
    min(chunk, total) entries, so a jitted function sees one shape per pass and compiles once.
    progress(done, total) at the start and after each chunk."""
    size = max(1, min(chunk, total))
    if progress is not None:
        progress(0, total)
    for start in range(0, total, size):
        rows = np.arange(start, min(start + size, total))
        yield rows, np.pad(rows, (0, size - len(rows)), mode="edge")
        if progress is not None:
            progress(int(rows[-1]) + 1, total)


@functools.cache
def _nearest_fn():
    import jax

    from pointset_cli import losses

    return jax.jit(lambda x, y, y_mask: losses.nearest_cost(x, y, y_mask, "sq"))


def _nearest_sq(a: np.ndarray, b: np.ndarray, b_mask: np.ndarray) -> np.ndarray:
    """Squared distance from each point of a [c, N, D] to the nearest real point of b [c, S, D]
    -> [c, N] float64; inf where b has no real point (the search would return its padding)."""
    cost = np.asarray(_nearest_fn()(a, b, b_mask), np.float64)
    return np.where(b_mask.any(1)[:, None], cost, np.inf)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real entries of values [c, N] -> [c] float64 (0 where none)."""
    return np.where(mask, values, 0.0).sum(1) / np.maximum(mask.sum(1), 1)


def _real_sets(points, mask) -> tuple[np.ndarray, np.ndarray]:
    """_as_sets with the padding zeroed: NaN or huge garbage never reaches the search."""
    points, mask = _as_sets(points, mask)
    return np.where(mask[..., None], points, 0.0).astype(np.float32), mask


def _diagonals(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Bounding-box diagonal of each set's real points [M, N, D] -> [M] float64 (0 for an empty set)."""
    lo = np.where(mask[..., None], points, np.inf).min(1)
    hi = np.where(mask[..., None], points, -np.inf).max(1)
    return np.linalg.norm(np.where(mask.any(1)[:, None], hi - lo, 0.0).astype(np.float64), axis=1)


def paired_fscore(x, y, x_mask=None, y_mask=None, *, tau: float = FSCORE_TAU, chunk: int = 64) -> dict[str, np.ndarray]:
    """F-score of output sets x[i] [N, D] against targets y[i] [S, D] (sizes may differ) at the
    distance threshold tau * (diagonal of y[i]'s bounding box) (Tatarchenko et al. 2019; the
    "F-score @ 1%" of completion papers): precision = share of x's real points within the threshold
    (Euclidean, not squared; strictly less, as the paper) of some real point of y, recall = share
    of y's within it of x, F = 2PR / (P + R) (0 when both are 0; an empty set's shares are 0).
    `chunk` pairs per call. -> {"fscore": [b], "precision": [b], "recall": [b]} float64."""
    x, x_mask = _real_sets(x, x_mask)
    y, y_mask = _real_sets(y, y_mask)
    if len(x) != len(y):
        raise ValueError(f"paired_fscore needs as many outputs as targets, got {len(x)} and {len(y)}")
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    radius_sq = (tau * _diagonals(y, y_mask)) ** 2
    shares = np.zeros((len(x), 2))  # [b, (precision, recall)]
    for rows, i in _chunks(len(x), chunk):
        r2 = radius_sq[i, None]
        shares[rows] = np.stack([_masked_mean(_nearest_sq(x[i], y[i], y_mask[i]) < r2, x_mask[i]),
                                 _masked_mean(_nearest_sq(y[i], x[i], x_mask[i]) < r2, y_mask[i])], 1)[: len(rows)]
    p, r = shares.T
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
    return {"fscore": f, "precision": p, "recall": r}


def one_sided_chamfer(x, y, x_mask=None, y_mask=None, *, chunk: int = 256, progress: Progress | None = None) -> np.ndarray:
    """[Mx, My] float64: mean over x[i]'s real points of the squared distance to the nearest real
    point of y[j], for every pair (not symmetric: x[i] inside y[j] gives 0 however much more y[j]
    has). 0 where x[i] has no real point, else inf where y[j] has none. `chunk` pairs per call;
    progress(done, total) counts pairs."""
    x, x_mask = _real_sets(x, x_mask)
    y, y_mask = _real_sets(y, y_mask)
    ii, jj = np.divmod(np.arange(len(x) * len(y)), len(y))
    values = np.zeros(len(ii))
    for rows, k in _chunks(len(ii), chunk, progress):
        i, j = ii[k], jj[k]
        values[rows] = _masked_mean(_nearest_sq(x[i], y[j], y_mask[j]), x_mask[i])[: len(rows)]
    return values.reshape(len(x), len(y))


def nearest_shapes(inputs, candidates, in_mask=None, cand_mask=None, *, points: int = 256, seed: int = 0,
                   progress: Progress | None = None) -> np.ndarray:
    """Index [M] of the candidate nearest each input by one-sided Chamfer from the input (input ->
    candidate), both subsampled to at most `points` random real points each (seeded) to keep the
    M x C search affordable; ties to the lowest index. progress(done, total) counts pairs."""
    from pointset_cli.data import batching

    x, x_mask = _real_sets(inputs, in_mask)
    c, c_mask = _real_sets(candidates, cand_mask)
    if not len(c):
        raise ValueError("nearest_shapes needs at least one candidate")
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    rng = np.random.default_rng(seed)
    # subsample moves the kept points to the front: the columns past `points` are padding only.
    x, x_mask = (a[:, :points] for a in batching.subsample(x, x_mask, points, rng))
    c, c_mask = (a[:, :points] for a in batching.subsample(c, c_mask, points, rng))
    best = np.zeros(len(x), np.int64)
    step = max(1, NEAREST_BLOCK // len(c))  # inputs per block: the block's matrix stays bounded
    for start in range(0, len(x), step):
        rows = slice(start, start + step)
        report = None if progress is None else functools.partial(_offset_progress, progress, start * len(c), len(x) * len(c))
        best[rows] = np.argmin(one_sided_chamfer(x[rows], c, x_mask[rows], c_mask, progress=report), axis=1)
    return best


def _offset_progress(progress: Progress, offset: int, total: int, done: int, _block_total: int) -> None:
    """One block's count as part of the whole pass's, so the count never goes back."""
    progress(offset + done, total)
