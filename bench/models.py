"""Train-step time, compile time, parameters and peak memory of every decoder at its default size.

python bench/models.py [--repeats 20] [--only tspn,mlp] [--profile] [--out JSON]
  -> table on stdout, JSON in bench/results/models.json (or --out).

Batches: real MNIST test digits as 2D sets (B=32, padded to N=342, pixels > 127) and real ModelNet10
shapes (B=32, N=1024, D=3; centred and scaled into the unit sphere). Each model is timed on a jitted
train step (Adam) as the median of `repeats` steps after one warm-up step; the RNN and DSPN take
fewer repeats (`--slow-repeats`). Peak memory is the process's max-RSS growth during the model's
compile and steps (on CPU; the first model also pays for the runtime's own allocations).

--profile also says what bounds each step: the step's FLOPs (XLA's cost analysis) per second as a
share of a float32 matmul's rate measured in the same run, and where a profiler trace of the steps
spends its op time: ops that contain a matrix product, other fused ops (elementwise work,
reductions), copies and transposes, and everything else (sorts, host kernels, loops).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import resource
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import optax

from pointset_cli.io.mnist import image_to_set, read_mnist
from pointset_cli.io.pcd import read_pcd
from pointset_cli.data.batching import Batch
from pointset_cli.models import DataSpec, ModelConfig, build_model
from pointset_cli.models.catalog import model_param_count
from pointset_cli.models.registry import names

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SLOW = {"rnn", "dspn"}


def padded(sets: list[np.ndarray], n_max: int, labels: np.ndarray) -> Batch:
    points = np.zeros((len(sets), n_max, sets[0].shape[1]), np.float32)
    mask = np.zeros((len(sets), n_max), bool)
    for i, s in enumerate(sets):
        points[i, : len(s)] = s[:n_max]
        mask[i, : len(s)] = True
    return Batch(points, mask, labels.astype(np.int32))


def mnist_batch(batch: int = 32, n_max: int = 342) -> Batch:
    images, labels = read_mnist(DATA / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
    return padded([image_to_set(im, 127) for im in images[:batch]], n_max, labels[:batch])


def modelnet_batch(batch: int = 32, n: int = 1024) -> Batch:
    files = sorted((DATA / "modelnet10_pcd1024" / "ModelNet10" / "pcd").glob("*/train/*.pcd"))[:: 97][:batch]
    sets = []
    for f in files:
        p = read_pcd(f.read_bytes()).points
        p = p - p.mean(0)
        sets.append((p / np.linalg.norm(p, axis=1).max()).astype(np.float32))
    return padded(sets, n, np.zeros(len(sets)))


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The float32 matmul rate of this machine now: a jitted [size, size] x [size, size] product, median."""
    a = jax.numpy.ones((size, size), jax.numpy.float32)
    mm = jax.jit(lambda x: x @ x)
    jax.block_until_ready(mm(a))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(mm(a))
        times.append(time.perf_counter() - start)
    return 2 * size**3 / float(np.median(times)) / 1e9


OP_KINDS = ("matmul", "fused", "copy/transpose", "other")


def op_kinds(hlo: str) -> dict[str, str]:
    """Each instruction name of a compiled HLO module -> one of OP_KINDS: "matmul" where it is a dot
    or a fusion whose computation has one, "copy/transpose" for copies and transposes (fused or not)."""
    bodies: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", hlo):  # computations start at column 0
        head = re.match(r"(?:ENTRY )?%?([\w.\-]+)", block)
        if head:
            bodies[head.group(1)] = block
    kinds = {}
    for name, opcode, rest in re.findall(r"^\s+(?:ROOT )?%?([\w.\-]+) = .*? ([\w\-]+)\((.*)$", hlo, re.M):
        called = re.search(r"calls=%?([\w.\-]+)", rest)
        body = bodies.get(called.group(1), "") if called else ""
        if opcode in ("dot", "convolution") or re.search(r" (dot|convolution)\(", body):
            kinds[name] = "matmul"
        elif opcode in ("copy", "transpose") or name.startswith(("copy", "transpose")):
            kinds[name] = "copy/transpose"
        elif opcode == "fusion":
            kinds[name] = "fused"
        else:
            kinds[name] = "other"
    return kinds


def trace_op_ms(compiled, args, steps: int = 3) -> dict[str, float]:
    """Milliseconds per step in each of OP_KINDS, summed over a profiler trace of `steps` steps
    (ops running on both cores at once both count)."""
    kinds = op_kinds(compiled.as_text())
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(steps):
                jax.block_until_ready(compiled(*args))
        events = json.load(gzip.open(next(Path(folder).rglob("*.trace.json.gz"))))["traceEvents"]
    total = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in kinds:
            total[kinds[e["name"]]] += e["dur"] / 1e3 / steps
    return {kind: round(total[kind], 1) for kind in OP_KINDS}


def bench_model(name: str, batch: Batch, n_classes: int, repeats: int, profile: bool = False) -> dict:
    data = DataSpec(dim=batch.points.shape[2], n_max=batch.points.shape[1], n_classes=n_classes)
    model = build_model(ModelConfig(name=name), data)
    optimizer = optax.adam(1e-3)
    rss0 = max_rss_mb()
    params = jax.jit(model.init)(jax.random.key(0), batch)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, key):
        (loss, _), grads = jax.value_and_grad(model.loss, has_aux=True)(params, key, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    start = time.perf_counter()
    compiled = step.lower(params, opt_state, jax.random.key(1)).compile()
    compile_s = time.perf_counter() - start
    params, opt_state, loss = jax.block_until_ready(compiled(params, opt_state, jax.random.key(1)))  # warm-up
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        params, opt_state, loss = jax.block_until_ready(compiled(params, opt_state, jax.random.key(i + 2)))
        times.append(time.perf_counter() - start)
    row = {}
    if profile:
        flops = compiled.cost_analysis()
        flops = (flops[0] if isinstance(flops, list) else flops).get("flops", 0.0)
        row = {"gflop": round(flops / 1e9, 2), "op_ms": trace_op_ms(compiled, (params, opt_state, jax.random.key(0)))}
    return row | {
        "model": name, "encoder": model.config.encoder or "default", "B": int(batch.points.shape[0]),
        "N": data.n_max, "D": data.dim, "params": model_param_count(model), "compile_s": round(compile_s, 2),
        "step_ms": round(1e3 * float(np.median(times)), 1), "repeats": repeats,
        "peak_rss_growth_mb": round(max_rss_mb() - rss0, 1), "final_loss": float(loss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--slow-repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--datasets", default="mnist,modelnet")
    parser.add_argument("--profile", action="store_true", help="also what bounds each step (see above)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "models.json")
    args = parser.parse_args()
    models = [m for m in names("decoder") if not args.only or m in args.only.split(",")]
    batches = {"mnist": (mnist_batch, 10), "modelnet": (modelnet_batch, 10)}
    rows = []
    print(f"{'data':9} {'model':8} {'B':>3} {'N':>5} {'params':>9} {'compile s':>9} {'step ms':>9} {'rss MB':>7}")
    for dataset in args.datasets.split(","):
        make, n_classes = batches[dataset]
        batch = make()
        for name in models:
            row = {"data": dataset, **bench_model(name, batch, n_classes, args.slow_repeats if name in SLOW
                                                  else args.repeats, args.profile)}
            rows.append(row)
            print(f"{dataset:9} {name:8} {row['B']:>3} {row['N']:>5} {row['params']:>9,} {row['compile_s']:>9} "
                  f"{row['step_ms']:>9} {row['peak_rss_growth_mb']:>7}", flush=True)
    if args.profile:
        peak = matmul_peak_gflops()
        print(f"\nWhat bounds each step (float32 matmul peak in this run: {peak:.0f} GFLOP/s; op time summed over "
              "both cores, ms per step)")
        print("| data | model | step ms | GFLOP per step | % of the matmul peak | " + " | ".join(OP_KINDS) + " |")
        print("| --- " * (5 + len(OP_KINDS)) + "|")
        for row in rows:
            row["peak_share"] = round(row["gflop"] / (row["step_ms"] / 1e3) / peak, 3)
            print(f"| {row['data']} | {row['model']} | {row['step_ms']} | {row['gflop']} | {row['peak_share']:.0%} | "
                  + " | ".join(str(row["op_ms"][k]) for k in OP_KINDS) + " |")
        meta_peak = {"matmul_peak_gflops": round(peak, 1)}
    else:
        meta_peak = {}
    out = args.out
    out.parent.mkdir(exist_ok=True)
    meta = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()], "jax": jax.__version__,
            **meta_peak}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
