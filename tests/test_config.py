"""Run configuration: precedence, typed coercion, unknown keys, YAML round trip, resume checks."""

from __future__ import annotations

import pytest

from pointset_cli import config
from pointset_cli.errors import UsageError


def test_precedence_defaults_file_set_flags(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("optim:\n  lr: 1e-3\n  warmup_steps: 7\ntrain:\n  steps: 50\n  seed: 3\n")
    cfg = config.resolve(cfg_file, ["train.steps=80", "optim.lr=5e-4"], {"train.steps": 99, "train.seed": None})
    assert cfg.optim.lr == 5e-4 and isinstance(cfg.optim.lr, float)  # YAML 1.1 reads 1e-3 as a string
    assert cfg.optim.warmup_steps == 7  # from the file
    assert cfg.train.steps == 99  # the flag beats --set and the file
    assert cfg.train.seed == 3  # a flag given as None does not count
    assert cfg.data.batch_size == config.DataConfig().batch_size  # default


def test_dict_options_and_optional_fields():
    cfg = config.resolve(None, ["model.decoder_options.width=32", "model.decoder_options.size_hidden=[8, 8]",
                                "model.encoder=none", "data.rotate_up=yes"])
    assert cfg.model.decoder_options == {"width": 32, "size_hidden": [8, 8]}
    assert cfg.model.encoder is None and cfg.data.rotate_up is True


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["optim.lrate=1"], "valid keys: optim.lr, optim.warmup_steps"),
        (["trian.steps=1"], "valid keys: name, data, model"),
        (["train.steps=ten"], "train.steps"),
        (["train.steps"], "KEY=VALUE"),
        (["optim=3"], "is a section"),
        (["data.rotate_up=maybe"], "data.rotate_up"),
    ],
)
def test_bad_overrides_are_usage_errors(sets, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        config.resolve(None, sets)


def test_unknown_key_in_file_lists_valid_ones(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stepz: 3\n")
    with pytest.raises(UsageError, match="train.stepz.*valid keys: train.steps"):
        config.resolve(bad)
    bad.write_text("- a list\n")
    with pytest.raises(UsageError, match="mapping"):
        config.resolve(bad)


def test_saved_config_reproduces_and_keeps_data_path_relative(tmp_path):
    data = tmp_path / "data" / "d.h5"
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    cfg = config.resolve(None, ["model.decoder_options.blocks=1", "train.steps=5"], {"data.path": str(data)})
    config.save(cfg, run / "config.yaml")
    assert "../../data/d.h5" in (run / "config.yaml").read_text()
    moved = tmp_path / "moved"
    (tmp_path / "runs").rename(moved)  # the path is relative to the file, not to the working folder
    assert config.resolve(moved / "r" / "config.yaml").data.path == str(data)
    assert config.load(moved / "r" / "config.yaml") == cfg


def test_check_resumable_names_the_differences():
    saved = config.resolve(None, ["train.steps=5"])
    config.check_resumable(saved, config.resolve(None, ["train.steps=50", "train.eval_every=3"]))
    with pytest.raises(UsageError, match=r"model.name: 'tspn' -> 'dspn'"):
        config.check_resumable(saved, config.resolve(None, ["model.name=dspn"]))
