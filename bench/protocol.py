"""PointFlow's generation protocol with every metric: 100 "samples" vs 100 references at 1,024 points.

python bench/protocol.py [--sets 100] [--repeats 1]
  -> table on stdout, JSON in bench/results/protocol.json.

The samples stand-in is 100 ModelNet10 training chairs and the references 100 test chairs (both
centred and scaled into the unit ball, from ../shared/data): similar shapes, the hard case for
ruling EMD pairs out. Each repeat runs the EMD search by lower bounds and the all-pairs EMD one
after the other (alternating which goes first), checks that every metric is identical, and
reports wall time, CPU use and how many EMD pairs each solved.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from pointset_cli import metrics
from pointset_cli.io import read_shape

DATA = Path(__file__).resolve().parents[2] / "shared/data/modelnet10_pcd1024/ModelNet10/pcd/chair"
OUT = Path(__file__).resolve().parent / "results" / "protocol.json"


def load(split: str, count: int) -> np.ndarray:
    sets = []
    for f in sorted((DATA / split).glob("*.pcd"))[:count]:
        p = read_shape(f).points
        p = p - p.mean(0)
        sets.append((p / np.linalg.norm(p, axis=1).max()).astype(np.float32))
    return np.stack(sets)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(samples: np.ndarray, refs: np.ndarray, search: str) -> tuple[dict, float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    result = metrics.generation_metrics(samples, refs, emd_search=search)
    return result, time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    samples, refs = load("train", args.sets), load("test", args.sets)
    metrics.generation_metrics(samples[:3, :64], refs[:3, :64])  # compile and load the kernels once
    times: dict[str, list[float]] = {"bounds": [], "all": []}
    cpu: dict[str, list[float]] = {"bounds": [], "all": []}
    results: dict[str, dict] = {}
    for k in range(args.repeats):
        for search in ("bounds", "all") if k % 2 == 0 else ("all", "bounds"):
            results[search], wall, used = run(samples, refs, search)
            times[search].append(wall)
            cpu[search].append(used)
            print(f"{search}: {wall:.1f} s", file=sys.stderr, flush=True)
    same = all(results["bounds"][m] == results["all"][m] for m in metrics.GENERATION_METRICS)
    bounds = results["bounds"]
    row = {
        "sets": args.sets, "points": int(samples.shape[1]), "cores": os.cpu_count(), "repeats": args.repeats,
        "bounds_s": float(np.median(times["bounds"])), "all_pairs_s": float(np.median(times["all"])),
        "bounds_cpu_s": float(np.median(cpu["bounds"])), "all_pairs_cpu_s": float(np.median(cpu["all"])),
        "emd_pairs": bounds["emd_pairs"], "emd_pairs_bounded": bounds["emd_pairs_bounded"],
        "emd_pairs_bracketed": bounds["emd_pairs_bracketed"], "emd_pairs_solved": bounds["emd_pairs_solved"],
        "identical_metrics": same,
        "metrics": {m: bounds[m] for m in metrics.GENERATION_METRICS},
    }
    row["speedup"] = row["all_pairs_s"] / row["bounds_s"]
    print("| sets | EMD pairs | dual bound | bracketed | solved | by bounds | all pairs | ratio | identical |")
    print(f"| {args.sets} vs {args.sets} | {row['emd_pairs']:,} | {row['emd_pairs_bounded']:,} | "
          f"{row['emd_pairs_bracketed']:,} | {row['emd_pairs_solved']:,} | {row['bounds_s']:.1f} s | "
          f"{row['all_pairs_s']:.1f} s | "
          f"{row['speedup']:.1f}x | {same} |")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
