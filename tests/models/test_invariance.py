"""Symmetries: encoders are invariant (padding garbage included), set-to-set blocks are equivariant."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pointset_cli.models import encoders, layers
from pointset_cli.models.dspn import SoftSetEncoder, gradient_step
from pointset_cli.models.queries import QueryTransformer
from pointset_cli.models.slot_attention import SlotAttention
from pointset_cli.models.tspn import TSPNTransformer

ENCODERS = [("deepsets", {"hidden": (16,), "rho": (16,), "pool": pool}) for pool in encoders.POOLS] + [
    ("set_transformer", {"width": 16, "heads": 2, "blocks": 2, "inducing": 4, "seeds": 2}),
    ("set_transformer", {"width": 16, "heads": 2, "blocks": 1, "inducing": 0, "seeds": 2}),
    ("set_transformer", {"width": 16, "heads": 2, "blocks": 2, "inducing": 4, "seeds": 2, "block": "light"}),
]


def with_fixed_params(forward, *init_args):
    """jit of args -> forward(*args) under parameters initialised (seed 0) from init_args.

    Init and apply share one compilation: each test compiles once.
    """
    f = hk.without_apply_rng(hk.transform(forward))
    return jax.jit(lambda *args: f.apply(f.init(jax.random.key(0), *init_args), *args))


def rows(x, perm):
    """x [B, N, ...] with its rows reordered by perm [N]."""
    return jnp.take(x, perm, axis=1)


@pytest.mark.parametrize(("name", "options"), ENCODERS)
def test_encoder_invariant_to_order_and_padding(name, options, mnist_batch, with_garbage, permuted):
    from pointset_cli.models import registry

    entry = registry.get("encoder", name)
    make = entry.build(registry.config_from_options(entry.config_cls, options), 8).make
    encode = with_fixed_params(lambda p, m: make()(p, m), mnist_batch.points, mnist_batch.mask)
    z = encode(mnist_batch.points, mnist_batch.mask)
    rng = np.random.default_rng(1)
    shuffled, _ = permuted(with_garbage(mnist_batch, rng), rng)
    assert z.shape == (8, 8)
    assert float(jnp.std(z, axis=0).mean()) > 1e-3  # different digits, different embeddings
    np.testing.assert_allclose(encode(shuffled.points, shuffled.mask), z, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("light", [False, True])
@pytest.mark.parametrize("block", ["sab", "isab", "mab"])
def test_set_transformer_blocks_equivariant(block, light):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 7, 16)), jnp.float32)
    mask = jnp.asarray(np.arange(7)[None] < np.array([[5], [7]]))
    y = jnp.asarray(rng.normal(size=(2, 3, 16)), jnp.float32)
    blocks = {
        "sab": lambda x, m: layers.SAB(16, 2, light)(x, m),
        "isab": lambda x, m: layers.ISAB(16, 2, 4, light)(x, m),
        "mab": lambda x, m: layers.MAB(16, 2, light)(x, y),
    }
    f = with_fixed_params(blocks[block], x, mask)
    perm = jnp.asarray(rng.permutation(7))
    real = np.asarray(rows(mask, perm))
    expected = np.asarray(rows(f(x, mask), perm))[real]
    np.testing.assert_allclose(np.asarray(f(rows(x, perm), rows(mask, perm)))[real], expected, atol=1e-5)


def test_light_block_is_the_official_formula():
    """MAB(light) = O + relu(O W_r + b_r) with O = Q + concat_h softmax(Q_h K_h^T / sqrt(C/H)) V_h and
    Q, K, V the projected x, y, y: written out in numpy from the block's own parameters, masked keys dropped."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    y = rng.normal(size=(2, 6, 8)).astype(np.float32)
    mask = np.arange(6)[None] < np.array([[4], [6]])
    f = hk.without_apply_rng(hk.transform(lambda x, y, m: layers.MAB(8, 2, light=True)(x, y, m)))
    params = f.init(jax.random.key(0), x, y, mask)
    assert not any("layer_norm" in k or k.endswith("/out") for k in params)  # no layer norm, no output projection
    got = np.asarray(f.apply(params, x, y, mask))
    p = {k.split("/")[-1]: v for k, v in params.items()}
    q, k, v = (a @ np.asarray(p[n]["w"]) + np.asarray(p[n]["b"]) for a, n in ((x, "query"), (y, "key"), (y, "value")))
    out = q.copy()
    for b in range(2):
        for h in range(2):
            c = slice(4 * h, 4 * h + 4)
            logits = q[b, :, c] @ k[b, mask[b], c].T / 2.0
            w = np.exp(logits - logits.max(1, keepdims=True))
            out[b, :, c] += (w / w.sum(1, keepdims=True)) @ v[b, mask[b], c]
    want = out + np.maximum(out @ np.asarray(p["rff"]["w"]) + np.asarray(p["rff"]["b"]), 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def attention_formula(params, x, y, mask, heads: int, light: bool) -> np.ndarray:
    """MultiHeadAttention written out in numpy: Q, K, V = x W_q, y W_k, y W_v (with biases); per head
    softmax(Q_h K_h^T / sqrt(C/H)) V_h over the unmasked keys (0 for an empty set); then Q + that
    (light) or that W_o (full)."""
    p = {k.split("/")[-1]: {n: np.asarray(a, np.float64) for n, a in v.items()} for k, v in params.items()}
    q, k, v = (a @ p[n]["w"] + p[n]["b"] for a, n in ((x, "query"), (y, "key"), (y, "value")))
    c = q.shape[-1] // heads
    out = np.zeros_like(q)
    for b in range(len(x)):
        for h in range(heads):
            ch = slice(c * h, c * h + c)
            if mask[b].any():
                logits = q[b, :, ch] @ k[b, mask[b], ch].T / np.sqrt(c)
                w = np.exp(logits - logits.max(1, keepdims=True))
                out[b, :, ch] = (w / w.sum(1, keepdims=True)) @ v[b, mask[b], ch]
    return q + out if light else out @ p["out"]["w"] + p["out"]["b"]


# (queries M, keys N, input width, heads): few queries (H M <= C: the keys' input space), few keys
# (H N <= C < H M: the full block moves W_q and W_o onto the keys), both many (heads split)
ATTENTION_SHAPES = [(4, 11, 3, 2), (1, 11, 8, 4), (11, 4, 8, 2), (9, 11, 8, 2)]


@pytest.mark.parametrize("light", [False, True])
@pytest.mark.parametrize(("m", "n", "d", "heads"), ATTENTION_SHAPES)
def test_attention_is_the_formula_on_every_route(m, n, d, heads, light):
    rng = np.random.default_rng(0)
    x, y = (rng.normal(size=(3, rows, d)).astype(np.float32) for rows in (m, n))
    mask = np.arange(n)[None] < np.array([[n - 3], [n], [0]])  # the third set is empty
    f = hk.without_apply_rng(hk.transform(lambda x, y, k: layers.MultiHeadAttention(heads, 8, light)(x, y, y, k)))
    params = f.init(jax.random.key(0), x, y, mask)
    params = jax.tree.map(lambda a: a + 0.3 * rng.normal(size=a.shape).astype(np.float32), params)  # nonzero biases
    got = np.asarray(f.apply(params, x, y, mask))
    np.testing.assert_allclose(got, attention_formula(params, x, y, mask, heads, light), rtol=1e-4, atol=1e-5)


def test_tspn_transformer_equivariant():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 9, 16)), jnp.float32)
    z = jnp.asarray(rng.normal(size=(2, 8)), jnp.float32)
    context = jnp.asarray(rng.normal(size=(2, 2, 4)), jnp.float32)
    f = with_fixed_params(lambda x: TSPNTransformer(16, 2, 2)(x, None, z, context), x)
    perm = jnp.asarray(rng.permutation(9))
    np.testing.assert_allclose(f(rows(x, perm)), rows(f(x), perm), atol=1e-5)


@pytest.mark.parametrize("core", ["queries", "slot"])
def test_query_and_slot_cores_equivariant_in_queries_invariant_in_memory(core):
    rng = np.random.default_rng(0)
    queries = jnp.asarray(rng.normal(size=(2, 9, 16)), jnp.float32)
    memory = jnp.asarray(rng.normal(size=(2, 5, 8)), jnp.float32)
    module = {"queries": lambda: QueryTransformer(16, 2, 2, 16), "slot": lambda: SlotAttention(16, 3, 16)}[core]
    f = with_fixed_params(lambda q, m: module()(q, m), queries, memory)
    out = f(queries, memory)
    perm = jnp.asarray(rng.permutation(9))
    np.testing.assert_allclose(f(rows(queries, perm), memory), rows(out, perm), atol=1e-5)
    np.testing.assert_allclose(f(queries, rows(memory, jnp.asarray(rng.permutation(5)))), out, atol=1e-5)


def test_dspn_inner_step_is_equivariant():
    """The gradient of an invariant function is equivariant: permuting the set permutes the step."""
    rng = np.random.default_rng(0)
    points = jnp.asarray(rng.random((2, 11, 2)), jnp.float32)
    presence = jnp.asarray(rng.random((2, 11)), jnp.float32)
    target = jnp.asarray(rng.normal(size=(2, 8)), jnp.float32)
    g = hk.without_apply_rng(hk.transform(lambda p, w: SoftSetEncoder(8, (16,), 5)(p, w)))

    @jax.jit
    def step(p, w):
        params = g.init(jax.random.key(0), points, presence)
        return gradient_step(lambda p, w: g.apply(params, p, w), target, p, w, 25.0)

    new_points, new_presence = step(points, presence)
    assert float(jnp.max(jnp.abs(new_points - points))) > 1e-4  # the step moves the set
    assert 0.0 <= float(jnp.min(new_presence)) and float(jnp.max(new_presence)) <= 1.0
    perm = jnp.asarray(rng.permutation(11))
    p_points, p_presence = step(rows(points, perm), rows(presence, perm))
    np.testing.assert_allclose(p_points, rows(new_points, perm), atol=1e-5)
    np.testing.assert_allclose(p_presence, rows(new_presence, perm), atol=1e-5)
