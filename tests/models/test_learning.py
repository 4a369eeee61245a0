"""Models that learn, not just run: on 64 real digits every autoencoder's reconstructions beat the
best single fixed set and follow their own inputs, and every size-deciding decoder counts."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pointset_cli import losses, metrics
from pointset_cli.config import OptimConfig
from pointset_cli.data.batching import Batch
from pointset_cli.models import DataSpec, build_model, registry
from pointset_cli.training.optim import make_optimizer
from pointset_cli.training.state import init_state
from pointset_cli.training.steps import make_train_step
from pointset_testing.setdata import padded_batch

DIGITS = 64
STEPS = 300
# Decoders that do not yet beat the best single fixed set in STEPS steps (none since DSPN encodes with
# its own g and takes its presence from the size: 2.5e-3 against 5.5e-3; BENCHMARKS.md).
# Strict: one that starts to pass fails here, so this list only shrinks.
NOT_YET: set[str] = set()
# At twice their tiny widths these do not yet beat it either (rnn Chamfer 8.1e-3, queries 5.9e-3,
# slot 5.8e-3, against 5.5e-3), at their default widths they do (4.7e-3, 4.4e-3 and 4.3e-3, with
# 31%, 14% and 28% of the reconstructions nearest their own input), so they train at their defaults.
AT_DEFAULT_WIDTH = {"rnn", "queries", "slot"}
SIZE_DECIDING = [n for n in registry.names("decoder") if registry.get("decoder", n).cardinality != "fixed"]


@pytest.fixture(scope="module")
def digits(bundled_data) -> Batch:
    """64 real MNIST test digits (pixels > 127) in [0, 1]^2, padded to the largest."""
    from pointset_cli.io.mnist import image_to_set, read_mnist

    images, labels = read_mnist(bundled_data / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
    return padded_batch([image_to_set(image, 127) for image in images[:DIGITS]], labels[:DIGITS])


def fixed_set_baseline(batch: Batch, steps: int = 600) -> float:
    """The mean Chamfer of the best single set (no latent): one learned set [N, 2] whose first n
    points stand for every digit of size n, fitted to the batch by Adam."""
    start = jnp.mean(batch.points[batch.mask], axis=0)
    key = jax.random.key(0)
    points = start + 0.1 * jax.random.normal(key, (batch.points.shape[1], 2))
    optimizer = optax.adam(1e-2)

    def loss(p):
        tiled = jnp.broadcast_to(p, batch.points.shape)
        return jnp.mean(losses.chamfer(tiled, batch.points, batch.mask, batch.mask))

    @jax.jit
    def step(p, state):
        value, grad = jax.value_and_grad(loss)(p)
        updates, state = optimizer.update(grad, state)
        return optax.apply_updates(p, updates), state, value

    state = optimizer.init(points)
    for _ in range(steps):
        points, state, _ = step(points, state)
    return float(loss(points))


def reconstruction_scores(model, params, batch: Batch) -> tuple[float, float]:
    """(mean Chamfer at the model's own sizes, retrieval accuracy) of the batch's reconstructions."""
    points, mask = jax.jit(model.reconstruct)(params, jax.random.key(1), batch)
    cd = metrics.paired_chamfer(batch.points, points, batch.mask, mask).mean()
    retrieval = metrics.retrieval_accuracy(metrics.pairwise_cd(points, batch.points, mask, batch.mask))
    return float(cd), retrieval


@pytest.fixture(scope="module")
def baseline(digits) -> float:
    return fixed_set_baseline(digits)


@pytest.mark.slow  # 300 steps per decoder: 10-150 s each on 2 CPU cores
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="not yet learning in STEPS steps")) if n in NOT_YET
    else n for n in registry.names("decoder")])
def test_autoencoder_learns_reconstructions_that_follow_their_input(name, digits, baseline, wider_config):
    """Trained as `pointset train` trains (warm-up, cosine decay, clipping) on one batch of 64 digits:
    the Chamfer halves, beats the best single fixed set, and at least 10% of the reconstructions
    (6x chance) are nearest their own input among the 64."""
    cfg = wider_config(name)
    if name in AT_DEFAULT_WIDTH:
        cfg = dataclasses.replace(cfg, decoder_options={})
    model = build_model(cfg, DataSpec(dim=2, n_max=digits.points.shape[1], n_classes=10))
    optimizer = make_optimizer(OptimConfig(lr=3e-3, warmup_steps=50), STEPS)
    state = init_state(model, optimizer, 0, digits)
    start, _ = reconstruction_scores(model, state.params, digits)
    train_step = make_train_step(model, optimizer)
    for _ in range(STEPS):
        state, _ = train_step(state, digits)
    cd, retrieval = reconstruction_scores(model, state.params, digits)
    assert cd < 0.5 * start, f"{name}: Chamfer {cd:.4g} from {start:.4g}"
    assert cd < baseline, f"{name}: Chamfer {cd:.4g} vs the best single fixed set {baseline:.4g}"
    assert retrieval >= 0.1, f"{name}: only {retrieval:.0%} of reconstructions are nearest their own input"


@pytest.mark.parametrize("name", SIZE_DECIDING)
def test_size_deciding_decoders_count_sets_of_one_to_eight_points(name, tiny_config):
    """Sizes 1-8, each point anywhere in the unit square: the decoder's own size is the input's
    (the latent carries it), before any training and whatever the points are."""
    rng = np.random.default_rng(0)
    sizes = np.tile(np.arange(1, 9), 4)
    batch = padded_batch([rng.uniform(size=(n, 2)) for n in sizes], np.zeros(len(sizes)))
    model = build_model(tiny_config(name), DataSpec(dim=2, n_max=8, n_classes=1))
    params = model.init(jax.random.key(0), batch)
    _, mask = jax.jit(model.reconstruct)(params, jax.random.key(1), batch)
    np.testing.assert_array_equal(np.sum(mask, axis=1), sizes)
