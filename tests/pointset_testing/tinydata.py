"""A tiny real dataset (the first bundled MNIST test digits as 2D sets) and a tiny model config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

BUNDLED_MNIST = Path(__file__).resolve().parents[2] / "data" / "mnist_t10k" / "t10k-images-idx3-ubyte.gz"

# A few-thousand-parameter autoencoder: compiles and steps in well under a second on a CPU.
TINY_MODEL = [
    "model.name=mlp", "model.latent_dim=8", "model.decoder_options.hidden=[16]",
    "model.encoder_options.hidden=[16]", "model.encoder_options.rho=[16]",
    "data.batch_size=8", "train.log_every=2", "train.eval_every=3", "train.checkpoint_every=2",
    "train.prior_components=2", "optim.warmup_steps=2",
]


def make_tiny_mnist(path: Path, n: int = 60, threshold: int = 200, all_test: bool = False,
                    no_val: bool = False, no_test: bool = False) -> Path:
    """The first `n` digits (pixels above `threshold`), split 4:1:1 into train/val/test (all test with
    `all_test`; 5:0:1 with `no_val`; 5:1:0 with `no_test`, as `prepare --val-fraction` alone makes)."""
    from pointset_cli.data.schema import write_dataset
    from pointset_cli.io.mnist import image_to_set, read_mnist

    images, labels = read_mnist(BUNDLED_MNIST)
    sets = [image_to_set(img, threshold) for img in images[:n]]
    counts = ([0, 0, n] if all_test else [n - n // 6, 0, n // 6] if no_val else [n - n // 6, n // 6, 0] if no_test
              else [n - 2 * (n // 6), n // 6, n // 6])
    split = np.repeat([0, 1, 2], counts).astype(np.uint8)
    write_dataset(
        path, sets, labels[:n], [f"t10k-images-idx3-ubyte.gz#{i}" for i in range(n)], split,
        [str(d) for d in range(10)], np.zeros((n, 2)), np.ones(n),
        {"normalization": "none", "sampler": "mnist", "seed": 0, "n_points": 0,
         "max_points": max(len(s) for s in sets), "provenance": {"source": "tests: first bundled MNIST digits"}},
    )
    return path
