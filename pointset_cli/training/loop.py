"""The training loop: cadence (log / evaluate / checkpoint), resume, signals, and the latent prior.

`train(cfg, run_dir, ...)` owns the run folder for its duration (RUN/.lock). The batch of step t
depends only on (seed, t), and the state (params, optimiser, rng, step) is checkpointed, so a run
stopped at any checkpoint and resumed ends with exactly the parameters of one that never stopped.
SIGINT/SIGTERM finish a checkpoint at the current step and exit 130/143; past train.max_minutes the
run validates and saves at the next log step and returns early (a batch job's time limit); a non-finite loss stops
the run (exit 1) before anything is saved from it. Each log step and evaluation is one metrics.jsonl
row, also written as TensorBoard scalars (run.events) unless train.tensorboard is false. Steps run
data-parallel (training.parallel): the batch is split over a device mesh, and with several processes
only process 0 writes to the run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pointset_cli import config as config_mod
from pointset_cli.run import events, folder
from pointset_cli.run.record import data_info, data_spec
from pointset_cli.config import RunConfig
from pointset_cli.data.batching import BatchStream, fixed_batch_indices, fixed_batches
from pointset_cli.errors import PointsetError, UsageError

DEFAULT_EPOCHS = 10


# What the run is doing, as Reporter.phase hears it.
COMPILING, TRAINING, VALIDATING, FITTING_PRIOR = "compiling", "training", "validating", "fitting the prior"


class Reporter(Protocol):
    """What the loop tells whoever shows its progress (cli/train.py draws it; nothing here knows a terminal)."""

    def start(self, total: int, done: int) -> None: ...
    # row: a log step's metrics.jsonl row (loss, its terms, lr, steps_per_s, ...); None at other steps
    def step(self, step: int, row: Mapping[str, float] | None) -> None: ...
    def validation(self, step: int, loss: float) -> None: ...  # the validation loss at `step`
    def phase(self, name: str) -> None: ...  # COMPILING, TRAINING, VALIDATING or FITTING_PRIOR
    def message(self, text: str) -> None: ...


class StderrReporter:
    """No progress bar; messages to stderr."""

    def start(self, total: int, done: int) -> None:
        pass

    def step(self, step: int, row: Mapping[str, float] | None) -> None:
        pass

    def validation(self, step: int, loss: float) -> None:
        pass

    def phase(self, name: str) -> None:
        pass

    def message(self, text: str) -> None:
        print(text, file=sys.stderr)


class TrainInterrupted(PointsetError):
    """SIGINT (exit 130) or SIGTERM (exit 143) after the checkpoint at the current step was written."""

    def __init__(self, signum: int, step: int, path: Path):
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}; "
                         "checkpoint saved, continue with --resume", path)
        self.exit_code = 128 + signum


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int  # steps done
    total_steps: int
    resumed_from: int | None  # the checkpoint step a resume started from
    best_val_loss: float | None
    prior: Path | None
    state: Any  # the final TrainState


VALIDATION_FRACTION = 0.1  # of the training split, held out when the dataset has no val split
MIN_TRAIN_FOR_HOLDOUT = 10  # fewer training sets than this: no validation rather than too few to train on


def validation_split(ds: Any, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(training indices, validation indices, where the validation sets come from).

    The dataset's val split when it has one; else a seeded 10% of its training split, held out of
    training, so the best checkpoint is never chosen on the test split.
    """
    train, val = ds.indices("train"), ds.indices("val")
    if len(val):
        return train, val, f"the val split ({len(val)} sets)"
    if len(train) < MIN_TRAIN_FOR_HOLDOUT:
        return train, val, "none (no val split, and too few training sets to hold any out)"
    held = np.random.default_rng([seed, 7]).permutation(len(train))[: max(1, round(VALIDATION_FRACTION * len(train)))]
    keep = np.ones(len(train), bool)
    keep[held] = False
    return train[keep], np.sort(train[held]), (f"{len(held)} training sets held out (no val split; "
                                               f"{VALIDATION_FRACTION:.0%} of the training split, seed {seed})")


def validation_label(ds: Any, val_idx: np.ndarray) -> str:
    """What loss.png calls the sets each evaluation scores (`val_idx`, after train.eval_sets)."""
    n_val = len(ds.indices("val"))
    if not n_val:
        return f"validation: held-out training sets ({len(val_idx)})"
    scored = f"{n_val} sets" if len(val_idx) == n_val else f"first {len(val_idx)} of {n_val} sets"
    return f"validation: val split ({scored})"


def total_steps(cfg: config_mod.TrainConfig, steps_per_epoch: int) -> int:
    if cfg.steps is not None:
        return cfg.steps
    return (cfg.epochs if cfg.epochs is not None else DEFAULT_EPOCHS) * steps_per_epoch


@contextlib.contextmanager
def _catch_signals() -> Iterator[list[int]]:
    """Record SIGINT/SIGTERM in the yielded list instead of raising mid-step."""
    got: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    try:
        old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in sigs}
    except ValueError:  # not the main thread: leave signals alone
        yield got
        return
    try:
        yield got
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class _Session:
    """One training session over an open dataset: model, optimiser, steps, checkpoints and logs."""

    def __init__(self, cfg: RunConfig, paths: folder.RunPaths, ds: Any, reporter: Reporter, dp: Any):
        import jax

        from pointset_cli.models import build_model
        from pointset_cli.run.checkpoints import Checkpoints
        from pointset_cli.training.optim import make_optimizer, make_schedule
        from pointset_cli.training.steps import make_eval_step, make_train_step

        self.cfg, self.paths, self.ds, self.reporter = cfg, paths, ds, reporter
        if ds.n_max > cfg.data.max_set_points:
            raise UsageError(f"its largest set has {ds.n_max:,} points; training takes sets of at most "
                             f"{cfg.data.max_set_points:,} (data.max_set_points): resample it with "
                             "`pointset prepare --points N`", ds.path)
        self.train_idx, self.val_idx, validation = validation_split(ds, cfg.train.seed)
        if not len(ds.indices("val")):
            reporter.message(f"validation: {validation}")
        if cfg.train.eval_sets > 0:
            self.val_idx = self.val_idx[: cfg.train.eval_sets]
        self.val_label = validation_label(ds, self.val_idx)
        self.stream = BatchStream(ds, self.train_idx, cfg.data.batch_size, cfg.train.seed, cfg.data)
        self.total = total_steps(cfg.train, self.stream.steps_per_epoch)
        self.info = {**data_info(ds, self.train_idx, paths.root), "validation": validation}
        self.model = build_model(cfg.model, data_spec(self.info))
        # An adversarial objective does not rank checkpoints (a lower value can be a weaker critic):
        # GAST keeps no best checkpoint, so sampling and eval take the latest.
        self.ranks = not self.model.players
        self.cfg = dataclasses.replace(cfg, model=self.model.config)  # what config.yaml records: the resolved model
        optimizer = make_optimizer(cfg.optim, self.total, self.model.players)
        self.schedule = jax.jit(make_schedule(cfg.optim, self.total))  # one small program, not one per op
        self.optimizer = optimizer
        self.dp = dp
        self.train_step = make_train_step(self.model, optimizer, dp)
        self.eval_step = make_eval_step(self.model, dp)
        self.ckpt = Checkpoints(paths.checkpoints, cfg.train.max_to_keep, reporter.message) if dp.primary else None
        self.log = folder.MetricsLog(paths.metrics)
        self.events: events.EventLog | None = None  # opened by run(), at the session's first step
        self.best: float | None = None
        self.last_saved = 0

    def batch(self, step: int) -> Any:
        """Step `step`'s batch as global arrays; this process reads only its own rows."""
        return self.dp.shard_batch(self.stream.batch(step, self.dp.part))

    def initial_state(self, resuming: bool) -> tuple[Any, int | None]:
        """The replicated state to start from: fresh from the seed, or process 0's newest readable checkpoint."""
        from pointset_cli.training.state import init_state

        fresh = init_state(self.model, self.optimizer, self.cfg.train.seed, self.stream.batch(0))
        state = self.dp.to_host(fresh)
        restored = self.ckpt.restore_latest(state) if resuming and self.dp.primary else None
        if resuming and self.dp.primary and restored is None:
            self.reporter.message("no checkpoint to resume from; starting at step 0")
        state = self.dp.from_primary(state if restored is None else restored)
        if int(state.step) == 0:
            return self.dp.replicate(state), None
        self.last_saved = int(state.step)
        best = [r["val_loss"] for r in self.log.read() if "val_loss" in r and r["step"] <= self.last_saved]
        self.best = min(best) if best and self.ranks else None
        return self.dp.replicate(state), self.last_saved

    def save_latest(self, step: int, state: Any) -> None:
        if self.ckpt is not None:
            self.ckpt.save_latest(step, self.dp.to_host(state))
        self.last_saved = step

    def write_records(self, step: int) -> None:
        self.paths.marker.write_text("a pointset run folder: `pointset train --overwrite` may replace it\n")
        config_mod.save(self.cfg, self.paths.config)
        folder.write_json(self.paths.env, folder.environment())
        folder.write_json(self.paths.data_info, self.info)
        self.log.truncate_after(step)

    def record(self, row: dict[str, Any]) -> None:
        """Process 0 appends `row` to metrics.jsonl and its numbers, tagged by key, to the TensorBoard events."""
        if not self.dp.primary:
            return
        self.log.append(row)
        if self.events is not None:
            self.events.append(row["step"], {k: v for k, v in row.items() if k not in ("step", "time")})

    def run(self, state: Any) -> Any:
        step = first = int(state.step)
        if self.cfg.train.tensorboard and self.dp.primary:
            self.events = events.EventLog(self.paths.root, first + 1)
        self.reporter.start(self.total, step)
        if step < self.total:
            self.reporter.phase(COMPILING)  # the first step compiles (a minute for a large model)
        pending: list[dict[str, Any]] = []  # metrics of the steps since the last log line, still on the device
        checked = 0  # how many of them have been read back and found finite
        start, log_start, log_step = time.perf_counter(), time.perf_counter(), step
        budget = self.cfg.train.max_minutes
        deadline = start + 60 * (budget or 0)
        batch = self.batch(step) if step < self.total else None
        with _catch_signals() as signals:
            while step < self.total:
                state, metrics = self.train_step(state, batch)
                if step == first:  # jit compiles before the call returns
                    self.reporter.phase(TRAINING)
                # Read the next batch from disk while the step computes (JAX dispatches asynchronously).
                batch = self.batch(step + 1) if step + 1 < self.total else None
                step += 1
                pending.append(metrics)
                log = step % self.cfg.train.log_every == 0 or step == self.total
                evaluate = step % self.cfg.train.eval_every == 0 or step == self.total
                save = step % self.cfg.train.checkpoint_every == 0 or step == self.total
                # Reading the loss back waits for the step to finish: only where it is used.
                rows = self._finite(pending, checked, step) if log or evaluate or save else None
                row = None
                if log:  # the metrics.jsonl row: means over the steps since the last one
                    now = time.perf_counter()
                    row = {"step": step, "time": round(now - start, 3), "lr": float(self.schedule(step - 1)),
                           "steps_per_s": round((step - log_step) / max(now - log_start, 1e-9), 3),
                           **{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}}
                self.reporter.step(step, row)
                # Processes agree on a stop at log steps only: a collective every step would cost.
                out_of_time = (log and budget is not None and step < self.total
                               and self.dp.any_process(time.perf_counter() >= deadline))
                stop = out_of_time or (self.dp.any_process(bool(signals)) if log
                                       else bool(signals) and self.dp.n_processes == 1)
                if stop and rows is None:  # the checkpoint the stop writes must be a good one
                    rows = self._finite(pending, checked, step)
                if rows is None:
                    continue
                checked = len(rows)
                if row is not None:
                    self.record(row)
                    pending, checked, log_start, log_step = [], 0, now, step
                if evaluate or out_of_time:  # a budget stop keeps the best checkpoint current
                    self.evaluate(state, step)
                if save or stop:
                    self.save_latest(step, state)
                if stop:
                    if self.ckpt is not None:
                        self.ckpt.wait()
                    if signals or not out_of_time:  # a signal here or in another process
                        raise TrainInterrupted(signals[0] if signals else signal.SIGTERM, step, self.paths.root)
                    self.reporter.message(f"stopped at step {step:,} of {self.total:,}: the time budget "
                                          f"(train.max_minutes = {budget:g}) is spent; --resume continues")
                    break
        return state

    def _finite(self, pending: list[dict[str, Any]], checked: int, step: int) -> list[dict[str, float]]:
        """The metrics of the `pending` steps (the last is `step`) on the host; a non-finite loss among
        those not yet `checked` stops the run before anything is saved from it."""
        import jax

        rows = [{k: float(v) for k, v in r.items()} for r in jax.device_get(pending)]
        first = step - len(rows) + 1
        for i in range(checked, len(rows)):
            if not math.isfinite(rows[i]["loss"]):
                raise PointsetError(
                    f"non-finite loss ({rows[i]['loss']}) at step {first + i}; stopped, last good checkpoint "
                    f"is step {self.last_saved}", self.paths.root)
        return rows

    def evaluate(self, state: Any, step: int) -> None:
        import jax

        if not len(self.val_idx):  # a dataset without val/test sets: nothing to score, the training curve to draw
            self.draw_losses()
            return
        self.reporter.phase(VALIDATING)
        key = jax.random.PRNGKey(self.cfg.train.seed + 1)
        totals: dict[str, float] = {}
        count = 0
        batches = fixed_batches(self.ds, self.val_idx, self.stream.batch_size, self.dp.part)
        indices = fixed_batch_indices(self.val_idx, self.stream.batch_size, self.dp.part)
        for (batch, n_real), (index, _) in zip(batches, indices):
            indexed = self.dp.shard_batch((batch, index.astype(np.int32)))
            metrics = self.dp.to_host(self.eval_step(state.params, indexed, key))
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + float(v) * n_real
            count += n_real
        row = {"step": step, **{f"val_{k}": v / count for k, v in totals.items()}}
        self.reporter.validation(step, row["val_loss"])
        if self.ranks and math.isfinite(row["val_loss"]) and (self.best is None or row["val_loss"] < self.best):
            self.best = row["val_loss"]
            if self.ckpt is not None:
                self.ckpt.save_best(step, self.dp.to_host(state), row["val_loss"])
        self.record(row)
        self.draw_losses()
        self.reporter.phase(TRAINING)

    def draw_losses(self) -> None:
        """loss.png from metrics.jsonl: each loss term, training and validation (process 0 writes it)."""
        from pointset_cli.render import render_loss_curve

        if self.dp.primary:
            render_loss_curve(self.log.read(), self.paths.loss_curve, self.val_label)

    def fit_prior(self) -> Path | None:
        """l-GMM on the training embeddings of the checkpoint that sampling uses (best, else latest)."""
        from pointset_cli.run.checkpoints import load_params
        from pointset_cli.run.generate import fit_prior, samples_latents

        if not samples_latents(self.model):
            return None

        self.reporter.phase(FITTING_PRIOR)
        params, _ = load_params(self.paths.checkpoints, self.reporter.message)
        idx = self.train_idx
        if 0 < self.cfg.train.prior_sets < len(idx):
            idx = np.sort(np.random.default_rng(self.cfg.train.seed).choice(idx, self.cfg.train.prior_sets, replace=False))
        return fit_prior(self.model, params, self.ds, idx, self.stream.batch_size, self.cfg.train.prior_components,
                         self.cfg.train.seed, self.paths.prior)


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    reporter: Reporter | None = None,
    devices: int | None = None,
) -> TrainResult:
    """Train `cfg` into `run_dir` (new, --resume to continue it, --overwrite to replace it).

    `devices`: how many devices the batch is split over (None: all, across every process).
    """
    import jax

    from pointset_cli.data.schema import SetDataset
    from pointset_cli.training.parallel import DataParallel

    reporter = reporter or StderrReporter()
    paths = folder.RunPaths(Path(run_dir))
    primary = jax.process_index() == 0
    resuming = folder.check_new_or_resume(paths, resume, overwrite, cfg.data.path) if primary else resume
    if not cfg.data.path:
        raise UsageError("no dataset: give DATA.h5 (or data.path in the config)")
    with folder.run_lock(paths, reporter.message) if primary else contextlib.nullcontext():
        replacing = primary and overwrite and folder.has_records(paths)
        with SetDataset(Path(cfg.data.path)) as ds:
            batch_size = min(cfg.data.batch_size, len(ds.indices("train")))
            dp = DataParallel(devices, batch_size)
            if replacing:  # the old run is deleted only once the new one has started
                folder.set_aside(paths)
            session = None
            try:
                session = _Session(cfg, paths, ds, reporter, dp)
                state, resumed_from = session.initial_state(resuming)
                if primary:
                    session.write_records(int(state.step))
            except BaseException:
                if session is not None and session.ckpt is not None:
                    session.ckpt.close()
                if replacing:
                    folder.restore(paths)
                raise
            if replacing:
                folder.discard_replaced(paths)
            if primary:  # the run has started: runs/latest now names it
                folder.point_latest(paths.root, reporter.message)
            try:
                state = session.run(state)
            finally:
                if session.ckpt is not None:
                    session.ckpt.close()
            prior = session.fit_prior() if primary else None
    return TrainResult(paths.root, int(state.step), session.total, resumed_from, session.best, prior, state)
