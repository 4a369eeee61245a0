"""A decoder is its own module plus one registration: a toy one, defined here, trains through the
normal path (the training loop, config.yaml, load_run and sampling) like a built-in."""

from __future__ import annotations

import dataclasses
import functools
import json

import haiku as hk
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from pointset_cli import config
from pointset_cli.models import DataSpec, ModelConfig, build_model, registry
from pointset_cli.models.decoder import Decoded
from pointset_cli.models.layers import sizes_mask
from pointset_testing.tinydata import TINY_MODEL


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    spread: float = 0.1  # initial scale of the learned offsets


class ToyDecoder(hk.Module):
    """z [B, K] -> S = n_max points: one centre from z plus a learned offset per slot."""

    ordered = False

    def __init__(self, num_points: int, dim: int, spread: float, name: str | None = None):
        super().__init__(name=name)
        self.num_points, self.dim, self.spread = num_points, dim, spread

    def __call__(self, z, sizes=None):
        centre = hk.Linear(self.dim, name="centre")(z)[:, None, :]  # [B, 1, D]
        offsets = hk.get_parameter("offsets", [self.num_points, self.dim],
                                   init=hk.initializers.RandomNormal(self.spread))  # [S, D]
        points = centre + offsets  # [B, S, D]
        mask = jnp.ones(points.shape[:2], bool) if sizes is None else sizes_mask(sizes, self.num_points)
        return Decoded(points, mask)


class Unordered(ToyDecoder):
    """Breaks the contract: a decoder must say whether its presence is ordered."""

    ordered = property(lambda self: (_ for _ in ()).throw(AttributeError("ordered")))


@pytest.fixture()
def toy():
    """Registers `toy` (and `broken`, which lacks the `ordered` flag) for one test."""

    def build(cls, cfg, data, latent_dim, tokens):
        return functools.partial(cls, data.n_max, data.dim, cfg.spread, name="decoder")

    for name, cls in (("toy", ToyDecoder), ("broken", Unordered)):
        registry.register("decoder", name, ToyConfig, "toy: a centre and learned offsets", cardinality="fixed",
                          encoder="deepsets", tiny={"spread": 0.05})(functools.partial(build, cls))
    yield "toy"
    for name in ("toy", "broken"):
        registry.unregister("decoder", name)


def test_a_decoder_registered_by_a_test_trains_two_steps_and_samples(toy, tiny_mnist, tmp_path):
    from pointset_cli.run.generate import sample_sets
    from pointset_cli.run.load import load_run
    from pointset_cli.training.loop import train

    sets = [s for s in TINY_MODEL if not s.startswith("model.")]
    cfg = config.resolve(None, [*sets, "model.name=toy", "model.latent_dim=8", "train.steps=2",
                                "train.log_every=1", "train.eval_every=2", "model.decoder_options.spread=0.2"],
                         {"data.path": str(tiny_mnist)})
    result = train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2] and all(np.isfinite(losses))
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model"]
    assert recorded["encoder"] == "deepsets" and recorded["decoder_options"] == {"spread": 0.2}
    assert set(recorded["encoder_options"]) == {"hidden", "pool", "pieces", "rho"}

    run = load_run(result.run_dir, warn=pytest.fail)  # a resolved config loads without a warning
    points, mask, _ = sample_sets(run, 3, seed=0)
    # a fixed-size decoder keeps the first n of its outputs, n from the latent's size code
    sizes = mask.sum(axis=1)
    assert points.shape == (3, run.info["n_max"], 2) and (sizes >= 1).all() and np.isfinite(points[mask]).all()
    assert all(mask[i, :n].all() for i, n in enumerate(sizes))


def test_the_registry_lists_it_and_checks_the_contract(toy):
    assert "toy" in registry.names("decoder") and registry.get("decoder", "toy").cardinality == "fixed"
    with pytest.raises(TypeError, match="decoder 'broken' does not satisfy models.decoder.Decoder"):
        build_model(ModelConfig(name="broken", latent_dim=8), DataSpec(2, 6, 10))  # checked as it is built
    with pytest.raises(ValueError, match="must register a cardinality"):
        registry.register("decoder", "no_mode", ToyConfig, "no cardinality", encoder="deepsets")


def test_every_builtin_registers_what_models_builtins_lists():
    from pointset_cli.models.builtins import BUILTINS

    for kind, listed in BUILTINS.items():
        assert registry.names(kind)[: len(listed)] == list(listed), kind
    for entry in registry.entries("decoder"):
        assert entry.cardinality in registry.CARDINALITIES and entry.encoder in registry.names("encoder")
        assert entry.tiny, f"{entry.name} registers no tiny test configuration"
