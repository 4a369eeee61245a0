"""Likelihood models on real sets: test NLL of `poisson` vs `setflow`, generation metrics, renders.

MNIST sets (5,000 training digits: pixels > 127 -> (col/27, 1 - row/27), 19..258 points; 4,000
train / 1,000 test) and ModelNet10 chairs (official split, 256 of the 1,024 points per shape,
centred and scaled into the unit sphere). Each model is trained with Adam for a fixed number of
steps; NLL is in nats per set with U = the bounding-box volume of the test points.

Prints a table, writes bench/results/likelihood.json and PNG renders of samples in bench/results/.
Run: .venv/bin/python bench/likelihood.py [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pointset_cli.likelihood import model_nll
from pointset_cli.metrics import generation_metrics
from pointset_cli.models import Batch, DataSpec, ModelConfig, build_model
from pointset_cli.models import gast, poisson, setflow  # noqa: F401  registers them until builtins does

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def pad(sets: list[np.ndarray], labels: np.ndarray) -> Batch:
    n = max(len(s) for s in sets)
    points = np.zeros((len(sets), n, sets[0].shape[1]), np.float32)
    for i, s in enumerate(sets):
        points[i, : len(s)] = s
    mask = np.arange(n)[None, :] < np.array([len(s) for s in sets])[:, None]
    return Batch(points, mask, np.asarray(labels, np.int32))


def mnist_sets() -> tuple[Batch, Batch]:
    raw = np.loadtxt(gzip.open(DATA / "mnist5k_train" / "mnist_5k.csv.gz"), delimiter=",", dtype=np.int64)
    images, labels = raw[:, :784].reshape(-1, 28, 28), raw[:, 784]
    sets = []
    for img in images:
        rows, cols = np.nonzero(img > 127)
        sets.append(np.stack([cols / 27.0, 1.0 - rows / 27.0], 1).astype(np.float32))
    order = np.random.default_rng(0).permutation(len(sets))
    data = pad([sets[i] for i in order], labels[order])
    return tuple(Batch(*(np.asarray(a)[sl] for a in data)) for sl in (slice(0, 4000), slice(4000, None)))


def modelnet_sets(cls: str = "chair", n_points: int = 256) -> tuple[Batch, Batch]:
    from pointset_cli.io import read_shape

    rng = np.random.default_rng(0)
    out = []
    for split in ("train", "test"):
        sets = []
        for path in sorted((DATA / "modelnet10_pcd1024" / "ModelNet10" / "pcd" / cls / split).glob("*.pcd")):
            pts = read_shape(path).points[rng.choice(1024, n_points, replace=False)]
            pts = pts - (pts.max(0) + pts.min(0)) / 2
            sets.append((pts / np.linalg.norm(pts, axis=1).max()).astype(np.float32))
        out.append(pad(sets, np.zeros(len(sets))))
    return out[0], out[1]


def train(model, data: Batch, steps: int, batch_size: int, lr: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    take = lambda idx: Batch(*(jnp.asarray(np.asarray(a)[idx]) for a in data))  # noqa: E731
    params = model.init(jax.random.PRNGKey(seed), take(np.arange(batch_size)))
    opt = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(lr))
    state = opt.init(params)

    @jax.jit
    def step(params, state, key, batch):
        (loss, _), grads = jax.value_and_grad(model.loss, has_aux=True)(params, key, batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    start = time.time()
    for i in range(steps):
        params, state, loss = step(params, state, jax.random.PRNGKey(i), take(rng.choice(len(data.mask), batch_size)))
    return params, float(loss), time.time() - start


def batches(data: Batch, size: int = 100):
    for s in range(0, len(data.mask), size):
        yield Batch(*(jnp.asarray(np.asarray(a)[s : s + size]) for a in data))


def generation(samples, mask, refs: Batch, n: int) -> dict:
    # CD-based only: all-pairs EMD on 256-point sets takes minutes per model on this CPU
    names = ("mmd_cd", "cov_cd", "nna_cd")
    return generation_metrics(samples[:n], refs.points[:n], sample_mask=mask[:n], ref_mask=refs.mask[:n], metrics=names)


def render(samples, mask, path: Path) -> None:
    from pointset_cli.render import render_sets

    order = np.argsort(mask.sum(1))  # small to large, so several sizes show
    pick = order[np.linspace(0, len(order) - 1, 16).astype(int)]
    render_sets(samples[pick], mask[pick], path, titles=[f"k={int(mask[i].sum())}" for i in pick], force=True)


def run(name: str, train_set: Batch, test_set: Batch, models: dict, steps: int, n_gen: int) -> list[dict]:
    spec = DataSpec(train_set.points.shape[-1], train_set.points.shape[1], 1)
    rows = []
    for model_name, (options, lr) in models.items():
        model = build_model(ModelConfig(name=model_name, decoder_options=options), spec)
        params, loss, seconds = train(model, train_set, steps, 32, lr)
        row = {"data": name, "model": model_name, "steps": steps, "train_s": round(seconds, 1), "final_loss": loss}
        if model.log_prob is not None:
            row.update(model_nll(model, params, batches(test_set)))
        samples, mask = (np.asarray(a) for a in model.sample(params, jax.random.PRNGKey(7), n_gen))
        start = time.time()
        row.update({k: v for k, v in generation(samples, mask, test_set, n_gen).items() if k not in row})
        row["metrics_s"] = round(time.time() - start, 1)
        render(samples, mask, RESULTS / f"likelihood_{name}_{model_name}.png")
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not isinstance(v, str) or k in ("data", "model")}), flush=True)
    # the oracle row: training sets scored as samples against the test sets
    rows.append({"data": name, "model": "oracle (train sets)", **generation(train_set.points, train_set.mask, test_set, n_gen)})
    return rows


def table(rows: list[dict]) -> str:
    cols = ["data", "model", "nll", "size_nll", "point_nll", "bits_per_point", "mmd_cd", "cov_cd", "nna_cd", "train_s"]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    args = parser.parse_args()
    steps = 30 if args.quick else 300
    RESULTS.mkdir(parents=True, exist_ok=True)
    flow = {"steps": 4, "hidden": 32, "heads": 4}
    gast = {"hidden": 32, "heads": 4, "generator_blocks": 2, "critic_blocks": 1}
    rows = run("mnist", *mnist_sets(), {"poisson": ({"components": 32}, 3e-2), "setflow": (flow, 2e-3),
                                        "gast": (gast, 1e-3)}, steps, 100)
    rows += run("modelnet10_chair", *modelnet_sets(), {"poisson": ({"components": 32}, 3e-2),
                                                       "setflow": (flow, 2e-3)}, steps, 50)
    print(table(rows))
    (RESULTS / "likelihood.json").write_text(json.dumps({"steps": steps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
