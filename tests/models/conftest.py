"""Real MNIST digits as padded 2D sets, and tiny model configs that keep the model tests fast."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

def _tiny_config(name: str, **overrides):
    """A ModelConfig for model `name` and its encoder at their registered tiny sizes (seconds to train)."""
    from pointset_cli.models import ModelConfig, registry, shares_encoder

    entry = registry.get(registry.MODEL_KINDS, name)
    encoder = overrides.pop("encoder", None) or entry.encoder
    if overrides.get("task") == "conditional" and overrides.get("style_dim") == 0:  # the label's embedding alone
        encoder = None
    defaults = dataclasses.asdict(entry.config_cls()) if entry.config_cls else {}
    if shares_encoder(overrides.get("task", "autoencode"), defaults):  # the decoder encodes with its own g
        encoder = None
    encoder_options = dict(registry.get("encoder", encoder).tiny) if encoder else {}
    return ModelConfig(name=name, encoder=encoder, latent_dim=16, encoder_options=encoder_options,
                       decoder_options=dict(entry.tiny), **overrides)


# The learning tests train at twice the registered tiny widths (and latent): at width 16 TSPN's
# Chamfer ended at 1.5x the best fixed set's, at width 32 at 0.85x with 22% of its
# reconstructions nearest their own input.
WIDER = 2
WIDTH_KEYS = ("width", "hidden", "ffn", "mlp_hidden", "rho", "head_hidden")


def _wider_config(name: str, **overrides):
    """_tiny_config(name, **overrides) with every width (an int or a tuple of them) and the latent WIDER times as wide."""
    def scale(value):
        return tuple(WIDER * v for v in value) if isinstance(value, tuple | list) else WIDER * value

    def wider(options: dict) -> dict:
        return {k: scale(v) if k in WIDTH_KEYS else v for k, v in options.items()}

    tiny = _tiny_config(name, **overrides)
    return dataclasses.replace(tiny, latent_dim=WIDER * tiny.latent_dim, encoder_options=wider(tiny.encoder_options),
                               decoder_options=wider(tiny.decoder_options))


@pytest.fixture(scope="session")
def wider_config():
    """wider_config(name, **ModelConfig overrides) -> the tiny ModelConfig at WIDER times its widths."""
    return _wider_config


@pytest.fixture(scope="session")
def mnist_batch(bundled_data):
    """8 real MNIST test digits (pixels > 127) as a Batch: points [8, N, 2], N = largest set, padding 0."""
    from pointset_cli.io.mnist import image_to_set, read_mnist
    from pointset_cli.data.batching import Batch

    images, labels = read_mnist(bundled_data / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
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
