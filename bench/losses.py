"""Chamfer forward+backward and exact assignment (EMD) against baselines measured in the same run.

python bench/losses.py [--quick] [--auction]  -> table on stdout, JSON in bench/results/losses.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from pointset_cli import losses


def median_time(fn, *args, repeats: int = 3) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def materialised_chamfer(x, y):
    """The baseline: the whole [B, N, M] matrix, then mins."""
    d = jnp.sum(x * x, -1)[:, :, None] + jnp.sum(y * y, -1)[:, None, :] - 2 * jnp.einsum("bnd,bmd->bnm", x, y)
    return jnp.sum(d.min(2).mean(1) + d.min(1).mean(1))


def bench_chamfer(sizes) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    ours = jax.jit(jax.value_and_grad(lambda a, b: losses.chamfer(a, b, reduction="sum")))
    base = jax.jit(jax.value_and_grad(materialised_chamfer))
    for n in sizes:
        x, y = (jnp.asarray(rng.normal(size=(32, n, 3)).astype(np.float32)) for _ in range(2))
        row = {"B": 32, "N": n, "ours_s": median_time(ours, x, y)}
        row["materialised_s"] = median_time(base, x, y) if n <= 2048 else None  # 8192: 8 GiB matrix
        print(f"chamfer {row}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def bench_emd(n: int, pairs: int, solvers=("scipy", "optax", "auction")) -> dict:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(2, pairs, n, 3)).astype(np.float32)
    start = time.perf_counter()
    loop = [cdist(y[k], x[k])[linear_sum_assignment(cdist(y[k], x[k]))].mean() for k in range(pairs)]
    row = {"B": pairs, "N": n, "scipy_loop_s": time.perf_counter() - start}
    for solver in solvers:
        fn = jax.jit(lambda a, b, s=solver: losses.hungarian(a, b, metric="euclidean", solver=s))
        row[f"{solver}_s"] = median_time(fn, x, y, repeats=1)
        row[f"{solver}_max_rel_err"] = float(np.max(np.abs(np.asarray(fn(x, y)) - loop) / np.array(loop)))
        print(f"emd {row}", file=sys.stderr, flush=True)
    return row


def main() -> None:
    quick = "--quick" in sys.argv
    chamfer_rows = bench_chamfer([512, 2048] if quick else [512, 2048, 8192])
    # The auction needs thousands of O(N^2) Jacobi rounds at float32's eps: on 2 CPU cores it is far
    # behind (minutes at N=256), so it is measured only on request, at N=64.
    emd_rows = [bench_emd(256 if quick else 1024, 8 if quick else 32, ("scipy", "optax"))]
    if "--auction" in sys.argv:
        emd_rows.append(bench_emd(64, 32))
    print(f"backend {jax.default_backend()}; Chamfer forward+backward, B=32, D=3 (median of 3)")
    print("| N | ours (s) | materialised (s) | speed-up |\n| --- | --- | --- | --- |")
    for r in chamfer_rows:
        base = r["materialised_s"]
        ratio = f"{base / r['ours_s']:.1f}x" if base else "n/a (matrix too big)"
        print(f"| {r['N']} | {r['ours_s']:.3f} | {base if base is None else round(base, 3)} | {ratio} |")
    for row in emd_rows:
        print(f"\nExact EMD, {row['B']} pairs at N={row['N']}: scipy loop {row['scipy_loop_s']:.2f} s")
        for solver in ("scipy", "optax", "auction"):
            if f"{solver}_s" in row:
                print(f"  {solver}: {row[f'{solver}_s']:.2f} s, max relative error {row[f'{solver}_max_rel_err']:.1e}")
    out = Path(__file__).parent / "results" / "losses.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"backend": jax.default_backend(), "chamfer": chamfer_rows, "emd": emd_rows}, indent=2))


if __name__ == "__main__":
    main()
