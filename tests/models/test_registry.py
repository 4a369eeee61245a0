"""The model registry: names, did-you-mean errors, option coercion."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pointset_cli.models import registry
from pointset_cli.errors import UsageError
from pointset_cli.models import DataSpec, ModelConfig, build_model

MNIST = DataSpec(dim=2, n_max=342, n_classes=10)


def test_unknown_model_says_did_you_mean_and_lists_valid_names():
    with pytest.raises(UsageError) as err:
        registry.get("decoder", "dpsn")
    message = str(err.value)
    assert "unknown model 'dpsn'" in message and "did you mean 'dspn'?" in message
    for name in ("mlp", "rnn", "dspn", "tspn", "slot", "queries"):
        assert name in message
    assert err.value.exit_code == 2


def test_unknown_encoder_through_build_model():
    with pytest.raises(UsageError, match="unknown encoder 'deepset'; did you mean 'deepsets'"):
        build_model(ModelConfig(name="mlp", encoder="deepset"), MNIST)


@dataclass(frozen=True)
class _Options:
    steps: int = 10
    lr: float = 1.0
    hidden: tuple[int, ...] = (8,)
    flag: bool = False


def test_config_from_options_coerces_strings_from_set():
    cfg = registry.config_from_options(_Options, {"steps": "5", "lr": "1e-3", "hidden": "[4, 4]", "flag": "true"})
    assert cfg == _Options(steps=5, lr=1e-3, hidden=(4, 4), flag=True)


def test_config_from_options_rejects_unknown_and_bad_values():
    with pytest.raises(UsageError, match=r"unknown option 'stepz'; did you mean 'steps'\? valid: steps, lr, hidden"):
        registry.config_from_options(_Options, {"stepz": 3})
    with pytest.raises(UsageError, match="steps"):
        registry.config_from_options(_Options, {"steps": "many"})


def test_build_model_rejects_bad_decoder_option_task_and_loss():
    with pytest.raises(UsageError, match="decoder_options.steps"):
        build_model(ModelConfig(name="dspn", decoder_options={"stpes": 3}), MNIST)
    with pytest.raises(UsageError, match="unknown task"):
        build_model(ModelConfig(name="mlp", task="densify"), MNIST)
    with pytest.raises(UsageError, match="unknown loss 'chamfr'"):
        build_model(ModelConfig(name="mlp", loss="chamfr"), MNIST)
    with pytest.raises(UsageError, match="multiple of the Set Transformer's seeds"):
        build_model(ModelConfig(name="tspn", latent_dim=10), MNIST)


def test_registering_a_name_twice_is_a_bug():
    name = registry.names("decoder")[0]
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("decoder", name, _Options, "again", cardinality="fixed", encoder="deepsets")(lambda: None)


def test_options_reach_the_model():
    model = build_model(ModelConfig(name="dspn", decoder_options={"steps": "3"}), MNIST)
    assert model.cardinality == "presence"
    assert build_model(ModelConfig(name="tspn"), MNIST).cardinality == "size"
    assert build_model(ModelConfig(name="mlp"), MNIST).cardinality == "fixed"
