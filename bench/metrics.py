"""All-pairs CD and EMD between ModelNet10 test chairs at 1,024 points (what `eval` does).

python bench/metrics.py [--emd-sets K]  -> table on stdout, JSON in bench/results/metrics.json.
CD runs on the full 100 x 100. EMD: scipy and the numba auction one after the other on the same
10 pairs (one thread, ratio per pair); then the default all-pairs path ("auction-numba", all cores)
on K x K sets (default 30; 100 for the full matrix), extrapolated to 100 x 100.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from pointset_cli import metrics
from pointset_cli.io import read_shape
from pointset_cli.distances import auction_kernel as emd

CHAIRS = Path(__file__).resolve().parents[2] / "shared/data/modelnet10_pcd1024/ModelNet10/pcd/chair/test"


def load_chairs() -> np.ndarray:
    sets = []
    for f in sorted(CHAIRS.glob("*.pcd"))[:100]:
        p = read_shape(f).points
        p = p - p.mean(0)
        sets.append((p / np.linalg.norm(p, axis=1).max()).astype(np.float32))
    return np.stack(sets)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_pair(chairs: np.ndarray, half: int, eps: float, pairs: int = 10) -> dict:
    """Single-thread seconds per pair of scipy and the auction on the same cost matrices, alternating."""
    emd.auction(emd.euclidean_cost(chairs[0, :8], chairs[1, :8]), eps)  # compile / load the cache
    times = {"scipy": [], "auction": []}
    worst = 0.0
    for k in range(pairs):
        cost = emd.euclidean_cost(chairs[k].astype(np.float64), chairs[half + k].astype(np.float64))
        start = time.perf_counter()
        exact = cost[linear_sum_assignment(cost)].mean()
        times["scipy"].append(time.perf_counter() - start)
        start = time.perf_counter()
        cols = emd.auction(cost, metrics.emd_error_bound("auction-numba", chairs))
        times["auction"].append(time.perf_counter() - start)
        worst = max(worst, cost[np.arange(len(cost)), cols].mean() - exact)
    scipy_s, auction_s = np.median(times["scipy"]), np.median(times["auction"])
    return {
        "emd_pairs_compared": pairs,
        "emd_scipy_per_pair_s": scipy_s,
        "emd_auction_per_pair_s": auction_s,
        "emd_auction_speedup": scipy_s / auction_s,
        "emd_auction_max_error": worst,
    }


def main() -> None:
    emd_sets = int(sys.argv[sys.argv.index("--emd-sets") + 1]) if "--emd-sets" in sys.argv else 30
    chairs = load_chairs()
    half = len(chairs) // 2
    start = time.perf_counter()
    metrics.pairwise_cd(chairs, chairs[:1])  # compile
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics.pairwise_cd(chairs, chairs)
    cd_s = time.perf_counter() - start
    rss_after_cd = peak_rss_mib()
    bound = metrics.emd_error_bound("auto", chairs)
    compared = per_pair(chairs, half, bound)
    a, b = chairs[:emd_sets], chairs[half : half + emd_sets] if emd_sets <= half else chairs
    start = time.perf_counter()
    metrics.pairwise_emd(a, b)
    emd_s = time.perf_counter() - start
    result = {
        "sets": len(chairs),
        "points": chairs.shape[1],
        "cd_100x100_s": cd_s,
        "cd_per_pair_ms": 1e3 * cd_s / len(chairs) ** 2,
        "cd_compile_s": compile_s,
        "peak_rss_mib_after_cd": rss_after_cd,
        **compared,
        "emd_solver": metrics.resolve_emd_solver("auto"),
        "emd_error_bound": bound,
        "emd_pairs_measured": len(a) * len(b),
        "emd_all_pairs_per_pair_s": emd_s / (len(a) * len(b)),
        "emd_100x100_s" if len(a) * len(b) == 10_000 else "emd_100x100_extrapolated_s": emd_s / (len(a) * len(b)) * 1e4,
        "peak_rss_mib": peak_rss_mib(),
    }
    print("| quantity | value |\n| --- | --- |")
    for key, value in result.items():
        print(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    out = Path(__file__).parent / "results" / "metrics.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
