"""The training loop on tiny real data: exact resume, interruption, corrupt checkpoints, bad losses."""

from __future__ import annotations

import json
import os
import signal

import jax
import numpy as np
import pytest

from pointset_cli import config
from pointset_cli.errors import PointsetError
from pointset_cli.training.loop import (
    COMPILING,
    FITTING_PRIOR,
    TRAINING,
    VALIDATING,
    StderrReporter,
    TrainInterrupted,
    train,
)
from pointset_testing.events import event_files, scalars_by_step
from pointset_testing.tinydata import TINY_MODEL


def _cfg(data, *extra):
    return config.resolve(None, [*TINY_MODEL, *extra], {"data.path": str(data)})


class _SignalAt(StderrReporter):
    """Sends this process `signum` right after step `at` (as a user's Ctrl-C would)."""

    def __init__(self, at: int, signum: int):
        self.at, self.signum, self.messages = at, signum, []

    def step(self, step, loss):
        if step == self.at:
            os.kill(os.getpid(), self.signum)

    def message(self, text):
        self.messages.append(text)


class _Recorder(StderrReporter):
    """What the loop reports besides messages, in order."""

    def __init__(self):
        self.calls = []

    def step(self, step, row):
        if row is not None:
            self.calls.append(("step", step, dict(row)))

    def validation(self, step, loss):
        self.calls.append(("validation", step, loss))

    def phase(self, name):
        self.calls.append(("phase", name))


def _assert_same_params(a, b):
    flat_a, flat_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def straight_reports():
    return _Recorder()


@pytest.fixture(scope="module")
def straight(tiny_mnist, tmp_path_factory, straight_reports):
    """Seven steps without interruption, with augmentation (its randomness must resume too)."""
    cfg = _cfg(tiny_mnist, "train.steps=7", "data.jitter=0.01", "data.rotate_up=true")
    return train(cfg, tmp_path_factory.mktemp("runs") / "straight", reporter=straight_reports)


def test_reports_phases_log_rows_and_validations_as_metrics_jsonl_and_tensorboard_record_them(
        straight, straight_reports):
    calls = straight_reports.calls
    rows = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    logged, validated = [r for r in rows if "loss" in r], [r for r in rows if "val_loss" in r]
    # log every 2 steps and at the last, validate every 3 and at the last
    assert [c[1] for c in calls if c[0] == "phase"] == [
        COMPILING, TRAINING, VALIDATING, TRAINING, VALIDATING, TRAINING, VALIDATING, TRAINING, FITTING_PRIOR]
    assert [(c[1], c[2]) for c in calls if c[0] == "step"] == [(r["step"], r) for r in logged]
    assert [c[1:] for c in calls if c[0] == "validation"] == [(r["step"], r["val_loss"]) for r in validated]
    assert [c[0] for c in calls[:3]] == ["phase", "phase", "step"]  # compiling ends with the first step
    assert len(event_files(straight.run_dir)) == 1
    for key in ("loss", "set_loss", "lr", "val_loss"):
        assert scalars_by_step(straight.run_dir, key) == pytest.approx(
            {r["step"]: r[key] for r in rows if key in r}, rel=1e-6), key


@pytest.mark.slow
def test_interrupted_then_resumed_equals_straight_run(straight, tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, "train.steps=7", "data.jitter=0.01", "data.rotate_up=true")
    run = tmp_path / "run"
    with pytest.raises(TrainInterrupted) as err:
        train(cfg, run, reporter=_SignalAt(3, signal.SIGINT))  # 3 is not a checkpoint step (every 2)
    assert err.value.exit_code == 130
    assert not (run / ".lock").exists()
    with pytest.raises(PointsetError, match="--resume"):
        train(cfg, run)  # an existing run folder is never overwritten silently
    resumed = train(cfg, run, resume=True)
    assert resumed.resumed_from == 3 and resumed.step == 7
    _assert_same_params(resumed.state.params, straight.state.params)
    _assert_same_params(resumed.state.opt_state, straight.state.opt_state)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps))  # no duplicated log rows after the resume
    assert len(event_files(run)) == 2  # the resumed session wrote a file of its own
    assert scalars_by_step(run, "loss") == pytest.approx({r["step"]: r["loss"] for r in rows if "loss" in r})
    for name in ("config.yaml", "env.json", "data.json", "prior.npz", "loss.png"):
        assert (run / name).is_file(), name


@pytest.mark.slow
def test_sigterm_then_corrupt_checkpoint_falls_back_with_a_warning(straight, tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, "train.steps=7", "data.jitter=0.01", "data.rotate_up=true")
    run = tmp_path / "run"
    with pytest.raises(TrainInterrupted) as err:
        train(cfg, run, reporter=_SignalAt(5, signal.SIGTERM))
    assert err.value.exit_code == 143
    latest = run / "checkpoints" / "latest"
    assert sorted(int(p.name) for p in latest.iterdir() if p.name.isdigit()) == [4, 5]  # max_to_keep 2
    for f in (latest / "5").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "METADATA" not in f.name:
            f.write_bytes(b"\0" * 7)  # a disk-full write: truncated garbage
    (latest / "6.orbax-checkpoint-tmp-99").mkdir()  # a kill during a save
    reporter = _SignalAt(-1, 0)
    resumed = train(cfg, run, resume=True, reporter=reporter)
    text = "\n".join(reporter.messages)
    assert "6.orbax-checkpoint-tmp-99" in text and f"{latest / '5'}" in text and "using step 4" in text
    assert resumed.resumed_from == 4
    _assert_same_params(resumed.state.params, straight.state.params)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_mnist, tmp_path):
    cfg = _cfg(tiny_mnist, "train.steps=6", "data.jitter=1e30")  # jittered points overflow to inf
    with pytest.raises(PointsetError, match="non-finite loss .* at step 1") as err:
        train(cfg, tmp_path / "run")
    assert err.value.exit_code == 1
    assert not [p for p in (tmp_path / "run" / "checkpoints" / "latest").glob("*") if p.name.isdigit()]


@pytest.mark.slow
def test_best_checkpoint_holds_the_parameters_only(straight):
    """best/ is what sample / eval / export read: parameters and step, no optimiser state."""
    import jax

    from pointset_cli.run.checkpoints import load_params

    root = straight.run_dir / "checkpoints"
    best = [p for p in (root / "best").iterdir() if p.name.isdigit()]
    params, step = load_params(root, lambda message: None)
    assert len(best) == 1 and step == int(best[0].name)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(straight.state.params)
    size = lambda d: sum(f.stat().st_size for f in d.rglob("*") if f.is_file())  # noqa: E731
    latest = max((p for p in (root / "latest").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    assert size(best[0]) < 0.6 * size(latest)  # Adam's two moments are left out


@pytest.mark.slow
def test_without_a_val_split_validation_is_held_out_of_training_never_the_test_split(tmp_path):
    from pointset_cli.data.schema import SetDataset
    from pointset_cli.training.loop import validation_split
    from pointset_testing.tinydata import make_tiny_mnist

    data = make_tiny_mnist(tmp_path / "no_val.h5", no_val=True)  # 50 train, 0 val, 10 test
    with SetDataset(data) as ds:
        train_idx, val_idx, where = validation_split(ds, seed=3)
        test_idx = ds.indices("test")
        assert len(val_idx) == 5 and len(train_idx) == 45 and "5 training sets held out" in where
        assert not set(val_idx) & set(train_idx) and not set(val_idx) & set(test_idx)
        assert set(val_idx) | set(train_idx) == set(ds.indices("train"))
        np.testing.assert_array_equal(validation_split(ds, seed=3)[1], val_idx)  # the same on a resume

    reporter = _SignalAt(-1, 0)
    result = train(_cfg(data, "train.steps=3"), tmp_path / "run", reporter=reporter)
    assert result.best_val_loss is not None
    assert any("5 training sets held out" in m for m in reporter.messages)
    record = json.loads((tmp_path / "run" / "data.json").read_text())
    assert "5 training sets held out" in record["validation"]


def test_the_loss_plot_names_the_validation_sets_it_scored(tiny_mnist, tmp_path):
    from pointset_cli.data.schema import SetDataset
    from pointset_cli.training.loop import validation_label, validation_split
    from pointset_testing.tinydata import make_tiny_mnist

    with SetDataset(tiny_mnist) as ds:  # 10 val sets
        val = ds.indices("val")
        assert validation_label(ds, val) == "validation: val split (10 sets)"
        assert validation_label(ds, val[:4]) == "validation: val split (first 4 of 10 sets)"  # train.eval_sets=4
    with SetDataset(make_tiny_mnist(tmp_path / "no_val.h5", no_val=True)) as ds:
        assert validation_label(ds, validation_split(ds, 0)[1]) == "validation: held-out training sets (5)"


@pytest.mark.slow
def test_a_run_without_validation_sets_still_draws_its_training_curve(tmp_path):
    from pointset_testing.tinydata import make_tiny_mnist

    data = make_tiny_mnist(tmp_path / "few.h5", n=6, no_val=True)  # 5 train: too few to hold any out
    result = train(_cfg(data, "train.steps=2", "train.prior_components=1"), tmp_path / "run")
    assert result.best_val_loss is None
    assert (tmp_path / "run" / "loss.png").read_bytes()[:4] == b"\x89PNG"
