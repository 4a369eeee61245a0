"""`pointset train` on tiny real data: config printing, run-folder rules, resume, lock, errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import yaml

from pointset_testing.runner import lock_holder
from pointset_testing.tinydata import TINY_MODEL

SETS = [a for s in TINY_MODEL for a in ("--set", s)]


def test_print_config_resolves_without_training(cli, tiny_mnist, tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train:\n  steps: 11\n  seed: 4\n")
    result = cli(["train", tiny_mnist, "--config", cfg_file, *SETS, "--set", "train.seed=5", "--seed", "6",
                  "--print-config", "--run-dir", tmp_path / "run"])
    assert result.exit_code == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    assert cfg["train"]["steps"] == 11 and cfg["train"]["seed"] == 6 and cfg["model"]["name"] == "mlp"
    # the resolved model: the default encoder by name, every option with its value (set or default)
    assert cfg["model"]["encoder"] == "deepsets" and cfg["model"]["encoder_options"]["pool"] == "sum"
    assert cfg["model"]["encoder_options"]["hidden"] == [16] and cfg["model"]["decoder_options"] == {"hidden": [16]}
    assert not (tmp_path / "run").exists()


def test_print_config_rejects_a_bad_model_option(cli, tiny_mnist, tmp_path):
    result = cli(["train", tiny_mnist, "--model", "tspn", "--set", "model.decoder_options.heds=2", "--print-config"])
    assert result.exit_code == 2
    assert "unknown option 'decoder_options.heds'; did you mean 'decoder_options.heads'?" in result.stderr


def test_dspn_encodes_with_its_own_g_unless_told_otherwise_as_readme_says(cli, tiny_mnist, tmp_path):
    """`--model dspn` resolves to no separate encoder (`info` says "own"); naming one is one line and
    exit 2 until shared_encoder is false, as README's Train section says."""
    dspn = ["train", tiny_mnist, "--model", "dspn", "--print-config"]
    result = cli(dspn)
    assert result.exit_code == 0, result.stderr
    model = yaml.safe_load(result.stdout)["model"]
    assert model["encoder"] is None and model["decoder_options"]["shared_encoder"] is True
    refused = cli([*dspn, "--encoder", "set_transformer"])
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "shared_encoder" in refused.stderr
    result = cli([*dspn, "--encoder", "set_transformer", "--set", "model.decoder_options.shared_encoder=false"])
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout)["model"]["encoder"] == "set_transformer"
    tiny = ["--set", "model.latent_dim=8", "--set", "model.decoder_options.hidden=[8]",
            "--set", "model.decoder_options.steps=1", "--set", "data.batch_size=8"]
    run = tmp_path / "dspn"
    assert cli(["train", tiny_mnist, "--model", "dspn", "--steps", "1", *tiny, "--run-dir", run, "-q"]).exit_code == 0
    assert json.loads(cli(["info", run, "--format", "json"]).stdout)["encoder"] == "own"


def test_unknown_key_is_exit_2(cli, tiny_mnist, tmp_path):
    result = cli(["train", tiny_mnist, "--set", "optim.learning_rate=1", "--run-dir", tmp_path / "r"])
    assert result.exit_code == 2
    assert "valid keys: optim.lr" in result.stderr


@pytest.mark.slow
def test_train_refuse_existing_resume_and_config_mismatch(cli, tiny_mnist, tmp_path):
    run = tmp_path / "run"
    first = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--run-dir", run, "--format", "json", "-q"])
    assert first.exit_code == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["steps"] == 2 and summary["prior"]
    assert {"config.yaml", "env.json", "data.json", "metrics.jsonl", "checkpoints", "prior.npz"} <= {
        p.name for p in run.iterdir()}
    before = (run / "metrics.jsonl").read_text()
    again = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--run-dir", run])
    assert again.exit_code == 2 and "--resume" in again.stderr
    assert (run / "metrics.jsonl").read_text() == before  # untouched
    other = cli(["train", "--resume", "--run-dir", run, "--set", "model.latent_dim=9"])
    assert other.exit_code == 2 and "model.latent_dim: 8 -> 9" in other.stderr
    resumed = cli(["train", "--resume", "--run-dir", run, "--steps", "3", "--format", "json", "-q"])
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_from"] == 2 and json.loads(resumed.stdout)["steps"] == 3
    # README's recipe: a run's own config.yaml names the run (it started a new one in runs/<model>).
    with_config = cli(["train", "--config", run / "config.yaml", "--resume", "--steps", "4", "--format", "json"],
                      catch_exceptions=False)
    assert with_config.exit_code == 0, with_config.stderr
    summary = json.loads(with_config.stdout)
    assert summary["run_dir"] == str(run) and summary["resumed_from"] == 3 and summary["steps"] == 4
    assert "resuming from step 3 of 4" in with_config.stderr


def test_time_budget_stops_cleanly_and_resume_finishes(cli, tiny_mnist, tmp_path):
    """--max-minutes: past the budget the run validates and saves at the next log step, exits 0 with
    one line saying so, and each --resume (a new session, a new budget) goes on until the steps are done."""
    run = tmp_path / "run"
    short = cli(["train", tiny_mnist, *SETS, "--steps", "6", "--set", "train.log_every=2", "--max-minutes", "1e-6",
                 "--run-dir", run, "--format", "json", "-q"])
    assert short.exit_code == 0, short.stderr
    summary = json.loads(short.stdout)
    assert summary["steps"] == 2 and summary["total_steps"] == 6 and summary["prior"]
    assert "stopped at step 2 of 6: the time budget (train.max_minutes = 1e-06) is spent" in short.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [2]  # validated at the stop: best is current
    for done in (4, 6):  # the budget is in config.yaml: each resumed session gets it again, as batch jobs do
        again = cli(["train", "--resume", "--run-dir", run, "--format", "json", "-q"])
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout)["resumed_from"] == done - 2 and json.loads(again.stdout)["steps"] == done
    assert "time budget" not in again.stderr  # the last session ended because the steps were done
    refused = cli(["train", tiny_mnist, *SETS, "--max-minutes", "0", "--run-dir", tmp_path / "other"])
    assert refused.exit_code == 2 and "train.max_minutes must be a finite number > 0 (got 0" in refused.stderr


def test_chamfer_sliced_trains_as_readme_shows(cli, tiny_mnist, tmp_path):
    """README's `train ... --model mlp --loss chamfer_sliced --max-minutes 10`, on the tiny digits for
    a few steps: every step logs a finite, positive set loss, and the run records the loss and the budget."""
    run = tmp_path / "run"
    result = cli(["train", tiny_mnist, "--model", "mlp", "--loss", "chamfer_sliced", "--max-minutes", "10", *SETS,
                  "--steps", "3", "--set", "train.log_every=1", "--run-dir", run, "--format", "json", "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 3
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["set_loss"] for r in rows if "set_loss" in r]
    assert len(losses) == 3 and all(np.isfinite(losses)) and min(losses) > 0, rows
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["loss"] == "chamfer_sliced" and saved["train"]["max_minutes"] == 10


def test_second_trainer_on_a_locked_run_is_refused(cli, tiny_mnist, tmp_path):
    run = tmp_path / "run"
    with lock_holder(run) as owner:
        result = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--run-dir", run, "--resume"])
    assert result.exit_code == 1
    assert f"pid {owner.pid}" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (run / "checkpoints").exists()


def test_missing_dataset_is_one_line_error(cli, tmp_path):
    result = cli(["train", tmp_path / "nope.h5", "--run-dir", tmp_path / "r", "-q"])
    assert result.exit_code == 1
    assert "nope.h5" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert os.environ.get("POINTSET_DEBUG", "") in ("", "0")


def _tree(root):
    """{relative path: bytes} of every file below root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_overwrite_never_deletes_a_folder_pointset_did_not_make(cli, tiny_mnist, tmp_path):
    """The user's folder, holding their files and the dataset being trained on: nothing is touched."""
    user = tmp_path / "u"
    (user / "notes").mkdir(parents=True)
    (user / "notes" / "thesis.tex").write_text("months of work")
    shutil.copy(tiny_mnist, user / "data.h5")
    before = _tree(user)
    for flags in (["--overwrite"], []):
        result = cli(["train", user / "data.h5", *SETS, "--steps", "2", "--run-dir", user, *flags])
        assert result.exit_code == 2, result.stderr
        assert "is not a pointset run folder; choose another --run-dir" in result.stderr
        assert "--overwrite" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert _tree(user) == before


@pytest.mark.slow
def test_overwrite_replaces_only_a_run_and_keeps_it_until_the_new_one_starts(cli, tiny_mnist, tmp_path):
    from pointset_cli import config
    from pointset_cli.training.loop import train

    run = tmp_path / "run"
    first = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--run-dir", run, "-q"])
    assert first.exit_code == 0, first.stderr
    (run / "notes.txt").write_text("mine")  # a file of the user's inside the run
    before = _tree(run)
    refused = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--run-dir", run, "--overwrite"])
    assert refused.exit_code == 2 and "--overwrite would delete 'notes.txt'" in refused.stderr
    assert _tree(run) == before
    (run / "notes.txt").unlink()
    before = _tree(run)

    (run / "samples").mkdir()  # a dataset written into the run (sample --format h5) is not deleted either
    shutil.copy(tiny_mnist, run / "samples" / "sets.h5")
    inside = cli(["train", run / "samples" / "sets.h5", *SETS, "--run-dir", run, "--overwrite"])
    assert inside.exit_code == 2 and "the dataset it trains on" in inside.stderr
    shutil.rmtree(run / "samples")

    # a new run that fails as it starts (a decoder option the model lacks) leaves the old one as it was
    bad = config.resolve(None, [*TINY_MODEL, "model.decoder_options.nope=1"], {"data.path": str(tiny_mnist)})
    with pytest.raises(Exception, match="nope"):
        train(bad, run, overwrite=True)
    assert _tree(run) == before

    replaced = cli(["train", tiny_mnist, *SETS, "--steps", "3", "--run-dir", run, "--overwrite", "-q"])
    assert replaced.exit_code == 0, replaced.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 3 and not (run / ".replaced").exists() and (run / ".pointset-run").is_file()


def test_a_dataset_with_sets_too_large_to_train_is_refused_in_one_line(cli, tmp_path):
    from pointset_cli.data.schema import write_dataset

    rng = np.random.default_rng(0)
    sets = [rng.normal(size=(n, 3)).astype(np.float32) for n in (100, 5000, 200)]
    data = tmp_path / "big.h5"
    write_dataset(data, sets, np.zeros(3, np.int32), ["a", "b", "c"], np.zeros(3, np.uint8), ["x"],
                  np.zeros((3, 3)), np.ones(3), {"normalization": "none", "sampler": "points", "seed": 0,
                                                 "n_points": 0, "max_points": 5000, "provenance": {}})
    run = tmp_path / "run"
    result = cli(["train", data, *SETS, "--steps", "1", "--run-dir", run, "--set", "data.max_set_points=1000"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "largest set has 5,000 points; training takes sets of at most 1,000 (data.max_set_points)" in result.stderr
    assert not run.exists()


@pytest.mark.slow
def test_runs_without_run_dir_get_their_own_folders_and_resume_continues_the_newest(cli, tiny_mnist, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    folders = []
    for _ in range(2):
        result = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--format", "json", "-q"])
        assert result.exit_code == 0, result.stderr
        folders.append(json.loads(result.stdout)["run_dir"])
    assert folders == ["runs/mlp-1", "runs/mlp-2"]  # the second no longer refused for runs/<model>
    assert os.readlink(tmp_path / "runs" / "latest") == "mlp-2"
    resumed = cli(["train", "--resume", "--steps", "3", "--format", "json", "-q"])
    assert resumed.exit_code == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_dir"] == "runs/mlp-2" and summary["resumed_from"] == 2 and summary["steps"] == 3
    named = cli(["train", tiny_mnist, *SETS, "--steps", "2", "--name", "mlp-1"])
    assert named.exit_code == 2 and "run folder exists (use --resume" in named.stderr  # a name is that folder


def _log_row(step, **losses):
    return {"step": step, "time": 1.0, "lr": 1e-3, "steps_per_s": 12.5, "grad_norm": 3.0, **losses}


def test_plain_reporter_prints_a_line_per_log_step_with_the_latest_validation_and_names_phases(capsys):
    from pointset_cli.cli.train import RichReporter
    from pointset_cli.training.loop import COMPILING, FITTING_PRIOR, TRAINING, VALIDATING

    reporter = RichReporter(quiet=False)  # stderr is not a terminal under pytest: plain lines
    reporter.start(10, 0)
    for call, *args in [("phase", COMPILING), ("step", 1, None), ("phase", TRAINING),
                        ("step", 2, _log_row(2, loss=1.5, set_loss=1.2, size_loss=0.3)), ("step", 3, None),
                        ("phase", VALIDATING), ("validation", 3, 0.75), ("phase", TRAINING),
                        ("step", 4, _log_row(4, loss=1.25, set_loss=1.25)), ("phase", FITTING_PRIOR)]:
        getattr(reporter, call)(*args)
    reporter.stop()
    lines = capsys.readouterr().err.splitlines()
    assert [lines[0], lines[2], lines[4]] == ["compiling", "validating", "fitting the prior"] and len(lines) == 5
    assert lines[1].startswith("training 2/10  loss 1.5 (set 1.2, size 0.3)  12.5 steps/s  ") and "left" in lines[1]
    assert lines[3].startswith("training 4/10  loss 1.25  val 0.75  12.5 steps/s  ") and "left" in lines[3]


def test_live_bar_names_the_phase_and_shows_the_latest_validation(monkeypatch):
    import io

    from rich.console import Console

    from pointset_cli.cli import _common
    from pointset_cli.cli.train import RichReporter
    from pointset_cli.training.loop import COMPILING, FITTING_PRIOR, TRAINING, VALIDATING

    monkeypatch.setattr(_common, "err_console", Console(file=io.StringIO(), force_terminal=True, width=200))
    reporter = RichReporter(quiet=False)
    reporter.start(10, 0)
    [task] = reporter.progress.tasks
    shown = lambda: (task.description, task.completed, task.fields["status"])  # noqa: E731
    reporter.phase(COMPILING)
    assert shown() == ("compiling", 0, "")
    reporter.phase(TRAINING)
    reporter.step(2, _log_row(2, loss=1.5, set_loss=1.2, size_loss=0.3))
    assert shown() == ("training", 2, "loss 1.5 (set 1.2, size 0.3)  12.5 steps/s")
    reporter.step(3, None)
    reporter.phase(VALIDATING)
    reporter.validation(3, 0.75)
    assert shown() == ("validating", 3, "loss 1.5 (set 1.2, size 0.3)  val 0.75  12.5 steps/s")
    reporter.phase(FITTING_PRIOR)
    assert shown()[0] == "fitting the prior"
    reporter.stop()


@pytest.mark.slow
def test_train_without_a_terminal_logs_each_log_step_and_writes_tensorboard_events(cli, tiny_mnist, tmp_path):
    from pointset_testing.events import event_files, scalars_by_step

    run = tmp_path / "run"
    result = cli(["train", tiny_mnist, *SETS, "--steps", "4", "--run-dir", run])  # log every 2, validate every 3
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    logged = [line for line in lines if line.startswith("training ")]
    assert [line.split()[1] for line in logged] == ["2/4", "4/4"]
    assert all("  loss " in line and " steps/s  " in line for line in logged)
    assert "val " not in logged[0] and "  val " in logged[1] and "left" in logged[0]
    assert [line for line in lines if line in ("compiling", "validating", "fitting the prior")] == [
        "compiling", "validating", "validating", "fitting the prior"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(event_files(run)) == 1
    for key in ("loss", "val_loss", "lr"):
        assert scalars_by_step(run, key) == pytest.approx({r["step"]: r[key] for r in rows if key in r}, rel=1e-6)
    off = cli(["train", tiny_mnist, *SETS, "--steps", "1", "--run-dir", tmp_path / "off", "-q",
               "--set", "train.tensorboard=false"])
    assert off.exit_code == 0, off.stderr
    assert not event_files(tmp_path / "off") and (tmp_path / "off" / "metrics.jsonl").is_file()
