"""Start-up of two versions of pointset, alternating: `sample` from the shipped run and a warm
`train --steps 2`, the working tree against an earlier commit.

python bench/startup_ab.py --before REV [--models mlp,tspn,dspn] [--rounds 3]
  -> table on stdout, JSON in bench/results/startup_ab.json.

REV is checked out into a temporary git worktree; each command runs in a fresh process in its
tree (`python -m pointset_cli` from the tree's root imports that tree's code), with the same
virtual environment and JAX compilation cache. Each command runs once per version first (to fill
the cache: "warm" means the cache holds the programs), then `rounds` times, the versions taking
turns and swapping who goes first each round. Medians. Training uses the 4,500 bundled digits
(bench/work/mnist5k.h5, made by `python bench/quality.py mnist`), so the whole command includes
fitting the latent prior and one validation; "steps" is when its progress line says the two
training steps are done (the issue's "time to the first training step", plus one step).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "startup_ab.json"
DATA = ROOT / "bench" / "work" / "mnist5k.h5"


def commands(kind: str, model: str, scratch: Path) -> list[str]:
    out = scratch / "out"
    shutil.rmtree(out, ignore_errors=True)
    if kind == "sample":
        return [sys.executable, "-m", "pointset_cli", "sample", str(ROOT / "checkpoints" / "mnist_mlp"), "-n", "16",
                "-o", str(out)]
    return [sys.executable, "-m", "pointset_cli", "train", str(DATA), "--model", model, "--steps", "2",
            "--eval-every", "2", "--run-dir", str(out)]


def timed(cmd: list[str], tree: Path) -> tuple[float, float]:
    """(seconds to the end, seconds to the progress line "training 2/2"; nan if none) of cmd run in tree."""
    start, steps = time.perf_counter(), float("nan")
    proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    for line in proc.stdout:  # plain progress lines: stdout is not a terminal
        lines.append(line)
        if line.startswith("training 2/2") and math.isnan(steps):
            steps = time.perf_counter() - start
    if proc.wait():
        raise SystemExit(f"{' '.join(cmd)} failed in {tree}:\n{''.join(lines)[-2000:]}")
    return time.perf_counter() - start, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--models", default="mlp,tspn,dspn")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA}: missing; `python bench/quality.py mnist --no-train` prepares it")
    scratch = Path(tempfile.mkdtemp(prefix="pointset-ab-"))
    before = scratch / "before"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.before], cwd=ROOT, check=True)
    trees = {"before": before, "after": ROOT}
    rows = []
    try:
        for kind, model in [("sample", "mlp")] + [("train", m) for m in args.models.split(",")]:
            for tree in trees.values():
                timed(commands(kind, model, scratch), tree)  # fills the compilation cache
            times: dict[str, list[float]] = {name: [] for name in trees}
            steps: dict[str, list[float]] = {name: [] for name in trees}
            for r in range(args.rounds):
                for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                    total, at_steps = timed(commands(kind, model, scratch), trees[name])
                    times[name].append(total)
                    steps[name].append(at_steps)
            row = {"command": kind, "model": model, **{f"{k}_s": float(np.median(v)) for k, v in times.items()},
                   **{f"{k}_steps_s": float(np.median(v)) for k, v in steps.items()}}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"| command | model | before ({args.before}) | after (working tree) | ratio | two steps done, before -> after |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        at = "-" if r["command"] == "sample" else f"{r['before_steps_s']:.2f} s -> {r['after_steps_s']:.2f} s"
        print(f"| {r['command']} | {r['model']} | {r['before_s']:.2f} s | {r['after_s']:.2f} s | "
              f"{r['before_s'] / r['after_s']:.2f}x | {at} |")
    OUT.write_text(json.dumps({"before": args.before, "rounds": args.rounds, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
