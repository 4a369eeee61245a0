"""Benchmark `pointset prepare` on all of ModelNet10 (4,899 PCD files, 1,024 points each).

Runs the same pipeline with --workers 2 and --workers 1 alternately (best of 2 each) in one
invocation, prints a table and writes bench/results/prepare.json.
Goal: the whole set in under 60 s on 2 cores, the parallel run at least 1.6x the single one.

    .venv/bin/python bench/prepare.py [--data ../shared/data/modelnet10_pcd1024/ModelNet10/pcd]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from pointset_cli.data.prepare import PrepareOptions, prepare

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "modelnet10_pcd1024" / "ModelNet10" / "pcd"


def time_prepare(data: Path, workers: int, out: Path) -> tuple[float, int]:
    start = time.perf_counter()
    report = prepare([str(data)], out, PrepareOptions(points=1024, normalize="sphere", workers=workers), force=True)
    return time.perf_counter() - start, report.n_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: not found (clone the repo beside ../shared)")
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for workers in (2, 1):
                seconds, n_files = time_prepare(args.data, workers, Path(tmp) / f"w{workers}.h5")
                times[workers].append(seconds)
    best = {w: min(t) for w, t in times.items()}
    rows = [{"workers": w, "seconds": best[w], "files_per_s": n_files / best[w], "speedup": best[1] / best[w],
             "all_seconds": times[w]} for w in (1, 2)]
    print(f"pointset prepare: ModelNet10, {n_files} PCD files, 1,024 points, best of {args.repeats}")
    print(f"{'workers':>8} {'seconds':>9} {'files/s':>9} {'speed-up':>9}")
    for r in rows:
        print(f"{r['workers']:>8} {r['seconds']:>9.2f} {r['files_per_s']:>9.0f} {r['speedup']:>8.2f}x")
    result = {
        "benchmark": "prepare", "files": n_files, "points": 1024, "rows": rows,
        "goal": {"max_seconds": 60, "min_speedup": 1.6},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
    }
    out = REPO / "bench" / "results" / "prepare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
