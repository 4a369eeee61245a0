"""How long `pointset train ... --steps 2` takes from a cold start, with and without JAX's
persistent compilation cache, and what jitting the parameter init saves.

python bench/startup.py [--models mlp,tspn,poisson] [--repeats 2]
  -> table on stdout, JSON in bench/results/startup.json.

Each measurement is a fresh process on the bundled MNIST digits (60 of them, prepared once):
- train: the whole command, cache off (POINTSET_JAX_CACHE=0), cold (an empty cache folder) and
  warm (the folder the cold run filled), in that order per repeat;
- init: `init_state` in a fresh process, eager (the model's init called directly) against jitted
  (what training does), alternating.
Medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "startup.json"

INIT = """
import sys, time
from pathlib import Path
import jax
from pointset_cli.config import ModelConfig
from pointset_cli.data.schema import SetDataset
from pointset_cli.data.batching import fixed_batches
from pointset_cli.models import build_model, resolve_model
from pointset_cli.run.record import data_info, data_spec
path, name, mode = sys.argv[1:4]
with SetDataset(path) as ds:
    batch, _ = next(fixed_batches(ds, ds.indices("train"), 32))
    spec = data_spec(data_info(ds, ds.indices("train"), Path(path).parent))
model = build_model(resolve_model(ModelConfig(name=name)), spec)
start = time.perf_counter()
init = model.init if mode == "eager" else jax.jit(model.init)
jax.block_until_ready(init(jax.random.PRNGKey(0), batch))
print(time.perf_counter() - start)
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,tspn,poisson")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pointset-startup-"))
    sys.path.insert(0, str(ROOT / "tests"))
    from pointset_testing.tinydata import make_tiny_mnist

    data = make_tiny_mnist(work / "tiny.h5")
    base = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    rows = []
    for name in args.models.split(","):
        times: dict[str, list[float]] = {"off": [], "cold": [], "warm": [], "init_eager": [], "init_jit": []}
        for k in range(args.repeats):
            cache = work / f"cache-{name}-{k}"
            for cond, setting in (("off", "0"), ("cold", str(cache)), ("warm", str(cache))):
                run_dir = work / f"run-{name}-{k}-{cond}"
                cmd = [sys.executable, "-m", "pointset_cli", "train", str(data), "--model", name, "--steps", "2",
                       "--run-dir", str(run_dir), "-q"]
                times[cond].append(timed(cmd, {**base, "POINTSET_JAX_CACHE": setting}))
                shutil.rmtree(run_dir, ignore_errors=True)
            for mode in ("eager", "jit") if k % 2 == 0 else ("jit", "eager"):
                out = subprocess.run([sys.executable, "-c", INIT, str(data), name, mode], capture_output=True,
                                     text=True, cwd=ROOT, env={**base, "POINTSET_JAX_CACHE": "0"})
                if out.returncode:
                    raise SystemExit(out.stderr[-2000:])
                times[f"init_{mode}"].append(float(out.stdout.split()[-1]))
        row = {"model": name, **{f"{k}_s": float(np.median(v)) for k, v in times.items()}}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    shutil.rmtree(work, ignore_errors=True)
    print("| model | train --steps 2: cache off | cold | warm | init eager | init jitted |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['off_s']:.1f} s | {r['cold_s']:.1f} s | {r['warm_s']:.1f} s | "
              f"{r['init_eager_s']:.2f} s | {r['init_jit_s']:.2f} s |")
    OUT.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
