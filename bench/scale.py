"""Data-parallel throughput: training steps/s on 1 and 2 forced CPU devices (or the GPUs present).

Each device count runs `pointset train --devices N` in a fresh process (XLA_FLAGS must be set before
JAX starts) on the bundled MNIST digits, and reads steps/s from the run's metrics.jsonl, leaving
out the first log interval (compilation). Prints a table and writes bench/results/scale.json.

    python bench/scale.py [--steps 60] [--batch-size 64] [--model tspn]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "scale.json"


def _pointset(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pointset_cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"pointset {args[0]} failed: {done.stderr.strip().splitlines()[-1]}")


def steps_per_s(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "steps_per_s" in r][1:]  # the first interval holds the compilation
    return sum(r["steps_per_s"] for r in rows) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="tspn")
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
        _pointset(["prepare", str(REPO / "data" / "mnist_t10k"), "-o", "mnist.h5", "--val-fraction", "0.05", "-q"],
                  work, base)
        rows = []
        for n in args.devices:
            env = {**base, "XLA_FLAGS": f"--xla_force_host_platform_device_count={max(args.devices)}"}
            _pointset(["train", "mnist.h5", "--model", args.model, "--steps", str(args.steps), "-b",
                       str(args.batch_size), "--devices", str(n), "--run-dir", f"d{n}", "-q",
                       "--set", "train.log_every=10", "--set", f"train.eval_every={args.steps}",
                       "--set", f"train.checkpoint_every={args.steps}", "--set", "train.eval_sets=64",
                       "--set", "train.prior_sets=64"], work, env)
            rows.append({"devices": n, "steps_per_s": round(steps_per_s(work / f"d{n}"), 3)})
    print(f"{'devices':>8} {'steps/s':>9} {'speed-up':>9}")
    for r in rows:
        print(f"{r['devices']:>8} {r['steps_per_s']:>9.2f} {r['steps_per_s'] / rows[0]['steps_per_s']:>9.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"model": args.model, "batch_size": args.batch_size, "steps": args.steps,
                                   "platform": base["JAX_PLATFORMS"],
                                   "machine": platform.processor() or platform.machine(),
                                   "cpus": os.cpu_count(), "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
