"""Loading a trained run: a run written before config.yaml recorded the resolved model (the shipped
checkpoint's config.yaml until 0.2) still loads and samples, with one warning line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from pointset_testing.runner import our_lines

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist_mlp"
BEFORE = Path(__file__).parent / "fixtures" / "config_before_resolved_models.yaml"  # its config.yaml until 0.2


def test_shipped_run_records_its_resolved_model():
    model = yaml.safe_load((SHIPPED / "config.yaml").read_text())["model"]
    assert model["name"] == "mlp" and model["encoder"] == "deepsets" and model["size_from"] == "latent"
    assert model["encoder_options"]["pool"] == "sum" and model["decoder_options"]["hidden"] == [256, 256]


@pytest.mark.slow  # trains a TSPN for two steps (its compilation: ~30 s on 2 cores)
def test_a_run_from_before_resolved_configs_loads_and_samples_as_the_resolved_one(cli, tmp_path, tiny_mnist):
    """The old config names no encoder, no options, no size_from and no centre: it loads as the
    model such a run trained (the decoder's own sizes, uncentred sets) with one warning."""
    old, new = tmp_path / "old", tmp_path / "new"
    trained = cli(["train", tiny_mnist, "--model", "tspn", "--steps", "2", "--run-dir", new, "-q",
                   "--set", "model.size_from=decoder", "--set", "model.centre=false"])
    assert trained.exit_code == 0, trained.stderr
    shutil.copytree(new, old)
    shutil.copy(BEFORE, old / "config.yaml")
    assert yaml.safe_load((old / "config.yaml").read_text())["model"]["decoder_options"] == {}

    runs = {}
    for name, run in (("old", old), ("new", new)):
        result = cli(["sample", run, "-n", "3", "--format", "npy", "--out", tmp_path / f"{name}_sets", "-q"])
        assert result.exit_code == 0, result.stderr
        runs[name] = result
    warning = our_lines(runs["old"].stderr)
    assert len(warning) == 1 and "does not record the encoder's name and 12 model options" in warning[0], warning
    assert str(old / "config.yaml") in warning[0]
    assert our_lines(runs["new"].stderr) == []
    for i in range(3):  # the same model: the defaults it was trained with are today's
        a, b = (np.load(tmp_path / f"{name}_sets" / f"sample_{i:04d}.npy") for name in ("old", "new"))
        np.testing.assert_array_equal(a, b)
