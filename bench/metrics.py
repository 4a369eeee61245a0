"""All-pairs CD and EMD between ModelNet10 test chairs at 1,024 points (what `eval` does).

python bench/metrics.py [--emd-sets K]  -> table on stdout, JSON in bench/results/metrics.json.
CD runs on the full 100 x 100; EMD on K x K sets (default 10) and is extrapolated per pair.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from pointset_cli import metrics
from pointset_cli.io import read_shape

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


def main() -> None:
    emd_sets = int(sys.argv[sys.argv.index("--emd-sets") + 1]) if "--emd-sets" in sys.argv else 10
    chairs = load_chairs()
    half = len(chairs) // 2
    start = time.perf_counter()
    metrics.pairwise_cd(chairs, chairs[:1])  # compile
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics.pairwise_cd(chairs, chairs)
    cd_s = time.perf_counter() - start
    rss_after_cd = peak_rss_mib()
    sub = chairs[:emd_sets]
    start = time.perf_counter()
    metrics.pairwise_emd(sub, chairs[half : half + emd_sets])
    emd_s = time.perf_counter() - start
    result = {
        "sets": len(chairs),
        "points": chairs.shape[1],
        "cd_100x100_s": cd_s,
        "cd_per_pair_ms": 1e3 * cd_s / len(chairs) ** 2,
        "cd_compile_s": compile_s,
        "peak_rss_mib_after_cd": rss_after_cd,
        "emd_pairs_measured": emd_sets**2,
        "emd_per_pair_s": emd_s / emd_sets**2,
        "emd_100x100_extrapolated_s": emd_s / emd_sets**2 * 1e4,
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
