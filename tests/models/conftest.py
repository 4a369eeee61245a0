"""Real MNIST digits as padded 2D sets, and tiny model configs that keep the model tests fast."""

from __future__ import annotations

import numpy as np
import pytest

# Widths small enough that each model compiles and steps in a few seconds on 2 CPU cores.
TINY_LATENT = 16
TINY_ST = {"width": 16, "heads": 2, "blocks": 1, "inducing": 4, "seeds": 2}
TINY_DEEPSETS = {"hidden": (16,), "rho": (16,)}
TINY_DECODERS = {
    "mlp": {"hidden": (32,)},
    "rnn": {"width": 16},
    "dspn": {"steps": 2, "hidden": (16,), "pieces": 5},
    "tspn": {"init_dim": 8, "width": 16, "heads": 2, "blocks": 1, "size_hidden": (16,)},
    "slot": {"width": 16, "iterations": 2, "mlp_hidden": 16, "head_hidden": (16,)},
    "queries": {"width": 16, "heads": 2, "layers": 1, "ffn": 16},
}


def _tiny_config(name: str, **overrides):
    from pointset_cli import registry
    from pointset_cli.models import ModelConfig

    encoder = overrides.pop("encoder", None) or registry.get("decoder", name).info["encoder"]
    return ModelConfig(
        name=name,
        encoder=encoder,
        latent_dim=TINY_LATENT,
        encoder_options=dict(TINY_ST if encoder == "set_transformer" else TINY_DEEPSETS),
        decoder_options=dict(TINY_DECODERS[name]),
        **overrides,
    )


@pytest.fixture(scope="session")
def mnist_batch(shared_data):
    """8 real MNIST test digits (pixels > 127) as a Batch: points [8, N, 2], N = largest set, padding 0."""
    from pointset_cli.io.mnist import image_to_set, read_mnist
    from pointset_cli.models import Batch

    images, labels = read_mnist(shared_data / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
    sets = [image_to_set(image, 127) for image in images[:8]]
    n = max(len(s) for s in sets)
    points = np.zeros((len(sets), n, 2), np.float32)
    mask = np.zeros((len(sets), n), bool)
    for i, s in enumerate(sets):
        points[i, : len(s)] = s
        mask[i, : len(s)] = True
    return Batch(points, mask, labels[:8].astype(np.int32))


def _with_garbage(batch, rng: np.random.Generator, scale: float = 1e3):
    """The batch with its padding rows filled with large random values."""
    garbage = rng.normal(scale=scale, size=batch.points.shape).astype(np.float32)
    return batch._replace(points=np.where(batch.mask[..., None], batch.points, garbage))


def _permuted(batch, rng: np.random.Generator):
    """The batch with the points (and mask) of each set shuffled, padding included."""
    perm = np.stack([rng.permutation(batch.points.shape[1]) for _ in range(batch.points.shape[0])])
    take = np.take_along_axis
    return batch._replace(points=take(batch.points, perm[..., None], 1), mask=take(batch.mask, perm, 1)), perm


@pytest.fixture(scope="session")
def tiny_config():
    """tiny_config(name, **ModelConfig overrides) -> a small ModelConfig for decoder `name`."""
    return _tiny_config


@pytest.fixture(scope="session")
def with_garbage():
    return _with_garbage


@pytest.fixture(scope="session")
def permuted():
    return _permuted
