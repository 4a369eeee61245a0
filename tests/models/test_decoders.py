"""Every registered decoder: shapes and masks, determinism, and training on real MNIST sets."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pointset_cli.errors import UsageError
from pointset_cli.models import registry
from pointset_cli.data.batching import Batch
from pointset_cli.models import DataSpec, build_model
from pointset_cli.training.state import init_state
from pointset_cli.training.steps import make_train_step

DECODERS = registry.names("decoder")
STOCHASTIC = {"tspn"}  # samples its initial set (slot too with init "gaussian": test_slot_inits)


def test_all_issue_decoders_registered():
    assert {"mlp", "rnn", "dspn", "tspn", "slot", "queries"} <= set(registry.names("decoder"))
    assert {"deepsets", "set_transformer"} <= set(registry.names("encoder"))


@pytest.mark.slow  # three compilations per decoder: 10-40 s each on 2 CPU cores
@pytest.mark.parametrize("name", DECODERS)
def test_decoder_shapes_determinism_and_training(name, mnist_batch, tiny_config, with_garbage, permuted):
    batch = Batch(*(jnp.asarray(a) for a in mnist_batch))
    n_max = batch.points.shape[1]
    model = build_model(tiny_config(name), DataSpec(dim=2, n_max=n_max, n_classes=10))
    model = model._replace(init=jax.jit(model.init))
    optimizer = optax.adam(1e-3)
    state = init_state(model, optimizer, 0, batch)
    sizes = jnp.sum(batch.mask, axis=1)

    @jax.jit
    def evaluate(params, key):
        loss, metrics = model.loss(params, key, batch)
        z = model.encode(params, batch)
        points, mask = model.decode(params, key, z, None)  # = reconstruct
        _, sized_mask = model.decode(params, key, z, sizes)
        return loss, metrics, points, mask, sized_mask

    train_step = make_train_step(model, optimizer)
    key = jax.random.split(state.rng)[1]  # the key train_step draws for its first step
    loss0, metrics, points, mask, sized_mask = evaluate(state.params, key)
    assert points.shape == (8, n_max, 2) and points.dtype == jnp.float32
    assert mask.shape == (8, n_max) and mask.dtype == jnp.bool_
    np.testing.assert_array_equal(jnp.sum(sized_mask, axis=1), sizes)  # given sizes are obeyed
    assert "set_loss" in metrics
    if model.config.size_from == "latent":  # z carries log(1 + n): the decoder's own size is exact
        assert model.latent_width == 16 + 2 + 1 and "card_acc" not in metrics
        np.testing.assert_array_equal(jnp.sum(mask, axis=1), sizes)
    else:
        assert "card_acc" in metrics and model.latent_width == 16 + 2 * model.config.centre
    assert bool(jnp.isfinite(loss0))

    # What the decoder sees of a set ignores the order of its points and the padding's contents.
    rng = np.random.default_rng(4)
    shuffled, _ = permuted(with_garbage(mnist_batch, rng), rng)
    encode = jax.jit(model.encode)
    np.testing.assert_allclose(encode(state.params, Batch(*map(jnp.asarray, shuffled))),
                               encode(state.params, batch), atol=1e-4, rtol=1e-4)

    # Deterministic from a seed; stochastic decoders vary with the key only.
    again = init_state(model, optimizer, 0, batch)
    jax.tree.map(np.testing.assert_array_equal, again.params, state.params)
    np.testing.assert_array_equal(evaluate(again.params, key)[2], points)
    other = evaluate(state.params, jax.random.key(123))[2]
    assert (name in STOCHASTIC) == (not np.allclose(other, points))

    # One optimiser step on this fixed batch of real digits lowers the loss (same sampling key).
    state1, m1 = train_step(state, batch)
    np.testing.assert_allclose(m1["loss"], loss0, rtol=1e-4)
    assert float(evaluate(state1.params, key)[0]) < float(loss0)
    state2, m2 = train_step(state1, batch)
    assert int(state2.step) == 2 and all(bool(jnp.isfinite(v)) for v in m2.values())


@pytest.mark.parametrize("name", ["tspn", "queries"])
def test_conditional_z_is_the_labels_embedding_and_a_style_code_of_the_set(name, mnist_batch, tiny_config,
                                                                           with_garbage, permuted):
    batch = Batch(*(jnp.asarray(a) for a in mnist_batch))
    spec = DataSpec(2, batch.points.shape[1], 10)
    styled = build_model(tiny_config(name, task="conditional"), spec)
    label_only = build_model(tiny_config(name, task="conditional", style_dim=0), spec)
    assert styled.config.style_dim == 8 and styled.config.encoder  # half the tiny latent of 16

    def jitted(model):
        def run(key, b):
            params = model.init(key, batch)
            return model.loss(params, key, b)[0], model.encode(params, b)
        return jax.jit(run)

    shuffled, _ = permuted(with_garbage(mnist_batch, np.random.default_rng(0)), np.random.default_rng(1))
    key = jax.random.key(0)
    loss, z = jitted(styled)(key, batch)
    _, z_shuffled = jitted(styled)(key, Batch(*(jnp.asarray(a) for a in shuffled)))
    assert bool(jnp.isfinite(loss)) and z.shape == (8, styled.latent_width) == (8, 16 + 2 + 1)
    np.testing.assert_allclose(z_shuffled, z, rtol=1e-5, atol=1e-6)  # the style is a code of the set
    same_label = np.flatnonzero(mnist_batch.labels == mnist_batch.labels[5])  # the two 1s
    assert len(same_label) == 2
    np.testing.assert_array_equal(z[same_label[0], :8], z[same_label[1], :8])  # the label's embedding
    assert not np.allclose(z[same_label[0], 8:16], z[same_label[1], 8:16])  # two 1s, two styles

    loss, z = jitted(label_only)(key, batch)
    assert bool(jnp.isfinite(loss)) and z.shape == (8, 16)
    for i in same_label:  # the label alone sets z
        np.testing.assert_array_equal(z[i], z[same_label[0]])


def test_sinkhorn_loss_takes_eps_and_iterations_from_the_config(mnist_batch):
    from pointset_cli import losses
    from pointset_cli.errors import UsageError
    from pointset_cli.models import ModelConfig
    from pointset_cli.models.objective import set_loss

    target, mask = jnp.asarray(mnist_batch.points), jnp.asarray(mnist_batch.mask)
    points = target[:, ::-1] * 0.9  # reversed order: padding first
    args = (points, mask[:, ::-1], None, target, mask, False)
    tuned = set_loss(ModelConfig(loss="sinkhorn", sinkhorn_eps=0.003, sinkhorn_iters=40), *args)
    np.testing.assert_allclose(tuned, losses.sinkhorn(points, target, mask[:, ::-1], mask, eps=0.003, iters=40))
    assert not np.allclose(tuned, set_loss(ModelConfig(loss="sinkhorn"), *args), rtol=1e-3)
    with pytest.raises(UsageError, match="sinkhorn_eps"):
        build_model(ModelConfig(name="mlp", loss="sinkhorn", sinkhorn_eps=0.0), DataSpec(2, 8, 10))


def test_presence_weighs_the_set_loss_only_where_it_decides_the_size(mnist_batch):
    """Latent sizes: the Chamfer term is the plain Chamfer of the n most present slots (however far
    the others are); presence deciding the size: DSPN's presence-weighted form, which sees them all."""
    import dataclasses

    from pointset_cli import losses
    from pointset_cli.models import ModelConfig
    from pointset_cli.models.decoder import Decoded
    from pointset_cli.models.objective import objective

    target, target_mask = jnp.asarray(mnist_batch.points), jnp.asarray(mnist_batch.mask)
    rng = np.random.default_rng(0)
    slots = jnp.concatenate([target + 0.01 * rng.normal(size=target.shape), 5.0 + jnp.zeros_like(target)], 1)
    presence = jnp.concatenate([jnp.where(target_mask, 0.9, 0.2), jnp.full(target_mask.shape, 0.1)], 1)
    out = Decoded(slots.astype(jnp.float32), jnp.ones(presence.shape, bool), presence=presence)
    latent = ModelConfig(name="queries", size_from="latent")
    _, terms = objective(out, target, target_mask, latent, "presence", False)
    top = jnp.concatenate([target_mask, jnp.zeros_like(target_mask)], 1)  # the n most present: the near copies
    np.testing.assert_allclose(terms["set_loss"], jnp.mean(losses.chamfer(slots, target, top, target_mask)), rtol=1e-6)
    _, weighted = objective(out, target, target_mask, dataclasses.replace(latent, size_from="decoder"), "presence", False)
    np.testing.assert_allclose(weighted["set_loss"], jnp.mean(losses.chamfer(slots, target, None, target_mask,
                                                                             x_weights=presence)), rtol=1e-6)
    assert float(weighted["set_loss"]) > 10 * float(terms["set_loss"])


def test_slot_inits(mnist_batch, tiny_config):
    """Slots start from learned vectors (the same reconstruction for any key) or, with init
    "gaussian", from the paper's draws (another key, another set); an unknown init is refused."""
    batch = Batch(*(jnp.asarray(a) for a in mnist_batch))
    spec = DataSpec(dim=2, n_max=batch.points.shape[1], n_classes=10)
    tiny = tiny_config("slot")

    def with_init(init: str):
        return dataclasses.replace(tiny, decoder_options={**tiny.decoder_options, "init": init})

    for init, stochastic in (("learned", False), ("gaussian", True)):
        model = build_model(with_init(init), spec)
        params = model.init(jax.random.key(0), batch)
        reconstruct = jax.jit(model.reconstruct)
        a, b = (reconstruct(params, jax.random.key(k), batch)[0] for k in (1, 2))
        assert (not np.allclose(a, b)) == stochastic, init
    with pytest.raises(UsageError, match="unknown slot init 'normal'"):
        build_model(with_init("normal"), spec)


def test_dspn_encodes_with_its_own_g_and_moves_only_the_points_at_a_given_size(mnist_batch, tiny_config):
    """Autoencoding, z = g(X) (the paper's autoencoder): no other encoder's parameters, and the inner
    loss is already 0 at the (centred) input itself, so descent has a reachable target. With the size
    in the latent, presence is 1 on exactly the first n slots at every iterate. Naming another encoder
    needs shared_encoder false, which builds it; a conditional run keeps its encoder either way."""
    import haiku as hk

    from pointset_cli.models import ModelConfig, encoder_name, resolve_model
    from pointset_cli.models.dspn import DSPNDecoderConfig, representation_loss
    from pointset_cli.models.layers import masked_pool

    batch = Batch(*(jnp.asarray(a) for a in mnist_batch))
    spec = DataSpec(dim=2, n_max=batch.points.shape[1], n_classes=10)
    tiny = tiny_config("dspn")
    model = build_model(tiny, spec)
    params = model.init(jax.random.key(0), batch)
    assert {m.split("/")[0] for m in params} == {"decoder"}
    z = model.encode(params, batch)[:, :tiny.latent_dim]
    centred = batch.points - masked_pool(batch.points, batch.mask, "mean")[:, None]
    options = registry.config_from_options(DSPNDecoderConfig, tiny.decoder_options)
    make_decoder = registry.get("decoder", "dspn").build(options, spec, tiny.latent_dim, 1)

    def at_input(points, mask, z):
        decoder = make_decoder(given_sizes=True)
        return representation_loss(decoder.encode_set(points, mask), z), decoder(z, jnp.sum(mask, axis=1))

    inner, out = hk.transform(at_input).apply(params, None, centred, batch.mask, z)
    np.testing.assert_allclose(inner, 0.0, atol=1e-6)
    sizes = jnp.sum(batch.mask, axis=1)
    for _, presence in out.iterates:
        np.testing.assert_array_equal(presence, jnp.arange(spec.n_max)[None] < sizes[:, None])

    with pytest.raises(UsageError, match="shared_encoder"):
        build_model(dataclasses.replace(tiny, encoder="set_transformer"), spec)
    separate = dataclasses.replace(tiny, encoder="set_transformer",
                                   decoder_options={**tiny.decoder_options, "shared_encoder": False})
    assert "encoder/embed" in build_model(separate, spec).init(jax.random.key(0), batch)
    conditional = resolve_model(ModelConfig(name="dspn", task="conditional"))
    assert conditional.encoder == "deepsets" and conditional.decoder_options["shared_encoder"] is True
    assert encoder_name(resolve_model(tiny)) == "own" and encoder_name(conditional) == "deepsets"
    assert encoder_name(resolve_model(ModelConfig(name="dspn", task="conditional", style_dim=0))) is None
