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
        (["train.steps=1e400"], "train.steps: cannot read"),
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


@pytest.mark.parametrize(
    ("key", "value"),
    [("data.batch_size", "0"), ("data.batch_size", "-3"), ("train.steps", "0"), ("train.epochs", "-1"),
     ("train.eval_every", "0"), ("train.log_every", "0"), ("train.checkpoint_every", "0"),
     ("train.max_to_keep", "0"), ("optim.lr", "-1"), ("optim.lr", "nan"), ("optim.lr", "inf"),
     ("optim.clip_norm", "-0.5"), ("data.jitter", "nan"), ("data.up_axis", "3"), ("train.prior_components", "0")],
)
def test_values_that_cannot_work_are_refused_when_resolved(key, value):
    with pytest.raises(UsageError, match=f"^{key} must be .*got") as err:
        config.resolve(None, [f"{key}={value}"])
    assert err.value.exit_code == 2


@pytest.mark.parametrize("name", ["/some/dir", "../elsewhere", "a/b", "..", "two\nlines"])
def test_a_run_name_is_a_name_not_a_path(name):
    with pytest.raises(UsageError, match="name must be a plain run name"):
        config.resolve(None, [], {"name": name})


def test_limits_leave_the_defaults_and_the_edges_alone():
    cfg = config.resolve(None, ["train.steps=1", "data.subsample=0", "optim.warmup_steps=0", "optim.clip_norm=0",
                                "train.eval_sets=0", "train.prior_sets=0"], {"name": "run-1.b"})
    assert cfg.train.steps == 1 and cfg.name == "run-1.b"
    config.validate(config.RunConfig())


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    """A "billion laughs" config: nine levels of ten aliases would expand to 10^9 strings."""
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"not valid YAML: aliases \(\*a0\) are not allowed"):
        config.resolve(path)
    with pytest.raises(UsageError, match="aliases"):
        config.resolve(None, ["model.decoder_options={a: &x 1, b: *x}"])


@pytest.mark.parametrize("value, problem", [
    ("[" * 5000 + "]" * 5000, "nested deeper than 16 levels"),  # was a RecursionError
    ("{a: " * 3000 + "1" + "}" * 3000, "nested deeper than 16 levels"),
    ("9" * 100_000, "Exceeds the limit"),  # was an internal ValueError of int()
])
def test_deep_or_huge_yaml_values_are_one_line_usage_errors(tmp_path, value, problem):
    path = tmp_path / "odd.yaml"
    path.write_text(f"train:\n  steps: {value}\n")
    with pytest.raises(UsageError, match=f"not valid YAML: {problem}") as err:
        config.resolve(path)
    assert len(str(err.value)) < 200
    with pytest.raises(UsageError, match=r"train.steps: cannot read '.{56}\.\.\. as int") as err:
        config.resolve(None, [f"train.steps={value}"])  # quoted cut to 60 characters
    assert len(str(err.value)) < 200
    path.write_text("x" * (config.MAX_YAML_CHARS + 1))
    with pytest.raises(UsageError, match="longer than"):
        config.resolve(path)


def test_a_run_config_written_before_an_option_keeps_what_that_run_trained(tmp_path):
    """A run's config.yaml with no model.size_from / model.centre trained with the decoder's own
    size and uncentred sets; a new config gets today's defaults (resolved per model)."""
    from pointset_cli.models import ModelConfig, resolve_model

    old = tmp_path / "config.yaml"
    old.write_text("model:\n  name: tspn\n")
    assert config.load(old).model.size_from == "decoder" and config.load(old).model.centre is False
    assert config.load(old).model.style_dim == 0  # a conditional run from then decoded its label alone
    old.write_text("model:\n  name: slot\n  decoder_options:\n    width: 32\n")
    assert config.load(old).model.decoder_options == {"width": 32, "init": "gaussian"}  # its slots were drawn
    assert resolve_model(ModelConfig(name="slot")).decoder_options["init"] == "learned"
    old.write_text("model:\n  name: dspn\n")
    # the paper's inner step, a separate encoder, presence descended
    assert config.load(old).model.decoder_options == {"scale_by_slots": False, "shared_encoder": False,
                                                      "presence_from_size": False}
    assert resolve_model(config.load(old).model).encoder == "deepsets"
    new = resolve_model(ModelConfig(name="dspn"))
    assert new.encoder is None and new.encoder_options == {}  # z = g(X), the decoder's own encoder
    assert {k: new.decoder_options[k] for k in ("scale_by_slots", "shared_encoder", "presence_from_size")} == {
        "scale_by_slots": True, "shared_encoder": True, "presence_from_size": True}
    old.write_text("model:\n  name: tspn\n")
    resumed = config.resolve(old, base_file=old)
    assert (resumed.model.size_from, resumed.model.centre) == ("decoder", False)
    assert config.resolve(old).model.size_from is None  # a new run from the same file: today's defaults
    new = resolve_model(ModelConfig(name="tspn"))
    assert (new.size_from, new.centre) == ("latent", True)
    assert resolve_model(ModelConfig(name="mlp")).size_from == "latent"  # fixed size: the first n of its outputs
    conditional = resolve_model(ModelConfig(name="tspn", task="conditional"))  # a style code: sets are encoded
    assert (conditional.size_from, conditional.centre, conditional.style_dim) == ("latent", True, 64)
    label_only = resolve_model(ModelConfig(name="tspn", task="conditional", style_dim=0))
    assert (label_only.size_from, label_only.centre, label_only.encoder) == ("decoder", False, None)
    assert resolve_model(ModelConfig(name="gast", task="conditional")).style_dim == 0
    for bad in ({"size_from": "latent", "task": "conditional", "style_dim": 0}, {"centre": True, "name": "poisson"},
                {"size_from": "nowhere"}, {"style_dim": 8}, {"task": "conditional", "style_dim": 128},
                {"task": "conditional", "style_dim": 0, "encoder_options": {"heads": 2}}):
        with pytest.raises(UsageError):
            resolve_model(ModelConfig(**{"name": "tspn", **bad}))
