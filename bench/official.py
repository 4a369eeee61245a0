"""Training steps beside the official PyTorch code of DSPN and the Set Transformer, in the same run.

    pip install -e .[bench]                                    # torch: a bench-only extra
    git clone https://github.com/Cyanogenoid/dspn CHECKOUTS/dspn
    git clone https://github.com/juho-lee/set_transformer CHECKOUTS/set_transformer
    python bench/official.py --dspn CHECKOUTS/dspn --set-transformer CHECKOUTS/set_transformer

Nothing is downloaded: the official modules are imported from the checkouts given (either may be
left out). torchvision, which the DSPN repository imports for its image encoder only, is replaced
by an empty module when it is not installed.

- DSPN, the repository's MNIST setting (scripts/mnist.sh: FSEncoder, dim 256, latent 64, 10 inner
  steps, inner lr 800, Chamfer, Adam lr 0.01), on 32 real MNIST test digits padded to 342 points.
  Its step is train.py's: forward, the mask as a feature, Chamfer over every inner step's set,
  backward, Adam. Ours: `--model dspn` at the same sizes (g's per-point MLP 256, 256; latent 64; 10
  inner steps), its own jitted training step (Chamfer on the final set, the L_repr term).
- Set Transformer, main_pointcloud.py's classifier (2 ISABs with 16 inducing points, width 256, 4
  heads, PMA, dropout, a linear map to 40 classes; cross-entropy, Adam) on 32 ModelNet10 shapes of
  1,024 points. Ours: the set_transformer encoder at the same sizes with one seed and a linear
  head, jitted, with its full block and with the official code's light block.

Rounds alternate the official step and ours; each round times the median of --repeats steps after
a warm-up; the table gives the median over rounds and the ratio (> 1: ours is faster). Writes
bench/results/official.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pointset_cli.models import DataSpec, ModelConfig, build_model
from pointset_cli.models.encoders import SetTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import mnist_batch, modelnet_batch  # noqa: E402  (bench/models.py: the same real batches)

RESULTS = Path(__file__).resolve().parent / "results" / "official.json"
CLASSES = 40  # main_pointcloud.py's ModelNet40 head


def median_step(step, repeats: int) -> float:
    """Seconds: the median of `repeats` calls of step() (each returns once its work is done), after one warm-up."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def import_from(folder: Path, module: str):
    """`module` imported from the checkout folder (which goes on sys.path for its own imports)."""
    sys.path.insert(0, str(folder))
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        sys.modules["torchvision"] = types.ModuleType("torchvision")
    return importlib.import_module(module)


def official_dspn_step(checkout: Path, batch):
    import torch

    model = import_from(checkout / "dspn", "model")
    utils = import_from(checkout / "dspn", "utils")
    encoder = model.FSEncoder(2, 64, 256)
    net = model.Net(set_encoder=encoder, set_decoder=model.DSPN(encoder, 2, 342, 256, 10, 800))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.01)
    target = torch.from_numpy(np.ascontiguousarray(batch.points.transpose(0, 2, 1)))  # [B, 2, N]
    mask = torch.from_numpy(batch.mask.astype(np.float32))  # [B, N]
    net.train()

    def step():
        (progress, masks, _, _), _ = net(None, target, mask)
        sets = torch.stack([torch.cat([p, m.unsqueeze(1)], 1) for p, m in zip(progress, masks)])
        loss = utils.chamfer_loss(sets, torch.cat([target, mask.unsqueeze(1)], 1).unsqueeze(0)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def adam_step(loss_fn, params):
    """A step() that takes one jitted Adam step on loss_fn(params) -> scalar, from `params`, and waits for it."""
    optimizer = optax.adam(1e-3)
    state = {"params": params, "opt": optimizer.init(params)}

    @jax.jit
    def train_step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def step():
        state["params"], state["opt"], loss = train_step(state["params"], state["opt"])
        jax.block_until_ready(loss)

    return step


def our_model_step(cfg: ModelConfig, batch):
    model = build_model(cfg, DataSpec(dim=batch.points.shape[2], n_max=batch.points.shape[1], n_classes=10))
    return adam_step(lambda params: model.loss(params, jax.random.key(1), batch)[0],
                     jax.jit(model.init)(jax.random.key(0), batch))


def official_set_transformer_step(checkout: Path, batch):
    import torch

    modules = import_from(checkout, "modules")

    class Classifier(torch.nn.Module):  # main_pointcloud.py's SetTransformer, built from the repository's blocks
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.Sequential(modules.ISAB(3, 256, 4, 16), modules.ISAB(256, 256, 4, 16))
            self.dec = torch.nn.Sequential(torch.nn.Dropout(), modules.PMA(256, 4, 1), torch.nn.Dropout(),
                                           torch.nn.Linear(256, CLASSES))

        def forward(self, x):
            return self.dec(self.enc(x)).squeeze()

    net = Classifier()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    points = torch.from_numpy(batch.points)
    labels = torch.from_numpy(np.arange(len(batch.points)) % CLASSES)
    net.train()

    def step():
        loss = torch.nn.functional.cross_entropy(net(points), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def our_set_transformer_step(batch, light: bool):
    def logits(points, mask):
        z = SetTransformer(256, 256, 4, 2, 16, 1, light, name="encoder")(points, mask)  # [B, 256]
        return hk.Linear(CLASSES, name="head")(z)  # [B, classes]

    f = hk.without_apply_rng(hk.transform(logits))
    points, mask = jnp.asarray(batch.points), jnp.asarray(batch.mask)
    labels = jnp.arange(len(batch.points)) % CLASSES
    return adam_step(
        lambda params: optax.softmax_cross_entropy_with_integer_labels(f.apply(params, points, mask), labels).mean(),
        f.init(jax.random.key(0), points, mask))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dspn", type=Path, help="a checkout of github.com/Cyanogenoid/dspn")
    parser.add_argument("--set-transformer", type=Path, help="a checkout of github.com/juho-lee/set_transformer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if importlib.util.find_spec("torch") is None:
        sys.exit("torch is not installed: pip install -e .[bench]")
    import torch

    pairs = {}  # what -> {"official": step, "ours ...": step}
    if args.dspn:
        batch = mnist_batch()
        paper = ModelConfig(name="dspn", latent_dim=64, decoder_options={"hidden": (256, 256)})
        pairs["DSPN, MNIST (B=32, N=342, 10 inner steps)"] = {
            "official": official_dspn_step(args.dspn, batch), "ours": our_model_step(paper, batch)}
    if args.set_transformer:
        batch = modelnet_batch()
        pairs["Set Transformer classifier, ModelNet10 (B=32, N=1024, width 256)"] = {
            "official": official_set_transformer_step(args.set_transformer, batch),
            "ours (full block)": our_set_transformer_step(batch, light=False),
            "ours (light block)": our_set_transformer_step(batch, light=True)}
    if not pairs:
        sys.exit("give --dspn and/or --set-transformer (checkouts of the official repositories)")
    times = {what: {who: [] for who in steps} for what, steps in pairs.items()}
    for r in range(args.rounds):
        for what, steps in pairs.items():
            for who, step in steps.items():
                times[what][who].append(median_step(step, args.repeats))
                print(f"round {r + 1}: {what}: {who} {times[what][who][-1]:.3f} s", file=sys.stderr, flush=True)
    rows = []
    print("| step | who | seconds (median of rounds) | official / ours |")
    print("| --- | --- | --- | --- |")
    for what, by in times.items():
        official = float(np.median(by["official"]))
        for who, values in by.items():
            s = float(np.median(values))
            rows.append({"step": what, "who": who, "seconds": round(s, 4), "rounds": [round(v, 4) for v in values],
                         "ratio": round(official / s, 2)})
            print(f"| {what} | {who} | {s:.3f} | {official / s:.2f}x |")
    meta = {"jax": jax.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "rounds": args.rounds, "repeats": args.repeats}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
