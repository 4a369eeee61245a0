"""`pointset train [DATA.h5] --model NAME`: train a set model into a run folder."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from pointset_cli.cli._help import Command, completer, examples
from pointset_cli.cli._common import (
    FormatOption,
    LineProgress,
    OutputFormat,
    QuietOption,
    err_console,
    handle_errors,
    hint,
    make_progress,
    print_json,
)
from pointset_cli.config import SET_TO_SET_TASKS, DataConfig, ModelConfig, OptimConfig, TrainConfig
from pointset_cli.errors import UsageError
from pointset_cli.models.builtins import listed
from pointset_cli.models.registry import MODEL_KINDS


def loss_status(row: Mapping[str, float]) -> str:
    """A log step's losses for the bar: `loss 1.23`, with its terms when it has several
    (`loss 1.23 (set 1.2, size 0.03)`)."""
    terms = [f"{k.removesuffix('_loss')} {v:.4g}" for k, v in row.items() if k.endswith("_loss")]
    return f"loss {row['loss']:.4g}" + (f" ({', '.join(terms)})" if len(terms) > 1 else "")


class RichReporter:
    """Training progress on stderr: a bar named by the phase (compiling, training, validating, fitting
    the prior) with the last log step's losses, the latest validation loss, steps/s and time left.

    Without a terminal (a log file, a batch job) it is one plain line per log step and one per phase
    the run enters besides training; with --quiet only messages.
    """

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = make_progress(quiet)
        self.plain = isinstance(self.progress, LineProgress)
        self.task: Any = None
        self.losses = self.val = self.speed = ""  # the last log step's losses and speed, the latest validation

    def start(self, total: int, done: int) -> None:
        from pointset_cli.training.loop import TRAINING

        if done and not self.quiet:
            self.message(f"resuming from step {done} of {total}")
        self.progress.start()
        self.task = self.progress.add_task(TRAINING, total=total, completed=done, status="")

    def step(self, step: int, row: Mapping[str, float] | None) -> None:
        if row is None:  # the losses are read back at log steps only
            if not self.plain:  # plain lines come at log steps alone
                self.progress.update(self.task, completed=step)
            return
        self.losses, self.speed = loss_status(row), f"{row['steps_per_s']:.1f} steps/s"
        self.progress.update(self.task, completed=step, status=self._status())

    def validation(self, step: int, loss: float) -> None:
        self.val = f"val {loss:.4g}"
        if not self.plain:  # a plain line shows it with the next log step's losses
            self.progress.update(self.task, status=self._status())

    def phase(self, name: str) -> None:
        from pointset_cli.training.loop import TRAINING

        if self.plain and name != TRAINING:
            self.message(name)
        if self.task is not None:
            self.progress.update(self.task, description=name)

    def _status(self) -> str:
        return "  ".join(part for part in (self.losses, self.val, self.speed) if part)

    def message(self, text: str) -> None:
        if getattr(self.progress, "live", None) is not None and self.progress.live.is_started:
            self.progress.console.print(text, highlight=False, markup=False)
        else:
            err_console.print(text, highlight=False, markup=False)

    def stop(self) -> None:
        self.progress.stop()


def _flags(**kw: Any) -> dict[str, Any]:
    keys = {
        "data": "data.path", "model": "model.name", "task": "model.task", "loss": "model.loss",
        "encoder": "model.encoder", "latent_dim": "model.latent_dim", "batch_size": "data.batch_size",
        "steps": "train.steps", "epochs": "train.epochs", "eval_every": "train.eval_every",
        "seed": "train.seed", "lr": "optim.lr", "name": "name", "rotate_up": "data.rotate_up",
        "jitter": "data.jitter", "subsample": "data.subsample", "max_minutes": "train.max_minutes",
    }
    out = {keys[k]: v for k, v in kw.items() if v is not None}
    if "data.path" in out:
        out["data.path"] = str(Path(out["data.path"]).absolute())
    return out


def _resolved(cfg: Any) -> Any:
    """The run config with its model resolved: every encoder and decoder option named, all validated."""
    import dataclasses

    from pointset_cli.models import resolve_model

    return dataclasses.replace(cfg, model=resolve_model(cfg.model))


def register(app: typer.Typer) -> None:
    @app.command("train", cls=Command, epilog=examples(
        "pointset train mnist.h5 --model tspn --steps 2000 --run-dir runs/tspn",
        "pointset train mn10.h5 --task complete --model tspn --set model.task_options.view=cut",
        "pointset train --config runs/tspn/config.yaml --resume",
    ))
    @handle_errors
    def train(
        data: Path = typer.Argument(None, help="Dataset from `pointset prepare` (or data.path in --config)."),
        model: str = typer.Option(None, "--model", "-m", autocompletion=completer(listed(*MODEL_KINDS)), help=f"Model: {', '.join(listed(*MODEL_KINDS))} (default "
                                  f"{ModelConfig.name}; `pointset models` describes each)."),
        task: str = typer.Option(None, "--task", help=f"autoencode (set -> z -> set), conditional (label + a style code -> set; --set model.style_dim=0: the label alone), or a set-to-set task made from each training set: complete (a partial view -> the whole), denoise (jitter and outliers -> clean), upsample (a quarter of the points -> all); how inputs are made: --set model.task_options.NAME=V (default {ModelConfig.task})."),
        loss: str = typer.Option(None, "--loss", autocompletion=completer(listed("loss")), help=f"Set loss: {', '.join(listed('loss'))} "
                                 f"(default {ModelConfig.loss})."),
        encoder: str = typer.Option(None, "--encoder", autocompletion=completer(listed("encoder")), help=f"Encoder: {', '.join(listed('encoder'))} "
                                    "(default: the model's)."),
        latent_dim: int = typer.Option(None, "--latent-dim", help=f"Latent size K (default {ModelConfig.latent_dim})."),
        batch_size: int = typer.Option(None, "--batch-size", "-b", help=f"Sets per step (default {DataConfig.batch_size})."),
        steps: int = typer.Option(None, "--steps", help="Total optimiser steps (also after --resume; default: from --epochs)."),
        epochs: int = typer.Option(None, "--epochs", help="Total epochs, when --steps is not given (default 10)."),
        max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-clock budget of this session in minutes (e.g. a batch job's limit): past it the run validates, saves and stops cleanly at the next log step (exit 0; --resume continues). Default: none."),
        eval_every: int = typer.Option(None, "--eval-every", help=f"Validate (and keep the best) every N steps (default {TrainConfig.eval_every})."),
        lr: float = typer.Option(None, "--lr", help=f"Peak learning rate (default {OptimConfig.lr:g})."),
        seed: int = typer.Option(None, "--seed", help=f"Seeds initialisation and batches (default {TrainConfig.seed})."),
        rotate_up: bool = typer.Option(None, "--rotate-up/--no-rotate-up", help="Random rotation about the up axis (default: off)."),
        jitter: float = typer.Option(None, "--jitter", help=f"Gaussian jitter std, normalised units (default {DataConfig.jitter:g})."),
        subsample: int = typer.Option(None, "--subsample", help="Keep at most K random points per set (default: all)."),
        name: str = typer.Option(None, "--name", help="Run name (folder runs/NAME; default: a new runs/<model>-N)."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run folder (default: the folder of a run's own --config, else runs/NAME, else a new runs/<model>-N; runs/latest links to the newest)."),
        config_file: Path = typer.Option(None, "--config", help="YAML config (e.g. a run's config.yaml)."),
        sets: list[str] = typer.Option([], "--set", help="Override a config key: --set optim.lr=3e-4 (repeatable)."),
        print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run folder where it stopped (without a folder named: runs/latest)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run folder."),
        devices: str = typer.Option("auto", "--devices", help="Devices to split each batch over: auto (all) or N."),
        coordinator: str = typer.Option(None, "--coordinator", envvar="JAX_COORDINATOR_ADDRESS",
                                        help="HOST:PORT of process 0, to train over several processes/hosts."),
        num_processes: int = typer.Option(None, "--num-processes", envvar="JAX_NUM_PROCESSES",
                                          help="Processes in the run (with --coordinator)."),
        process_id: int = typer.Option(None, "--process-id", envvar="JAX_PROCESS_ID",
                                       help="This process's index, 0..P-1; process 0 writes the run folder."),
        fmt: OutputFormat = FormatOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Train a set model (autoencoder, conditional generator or set-to-set model) into a run folder."""
        from pointset_cli import config

        if data is not None and str(data) == "-":
            raise UsageError("train reads a dataset file (HDF5 needs a path), not stdin (-)")
        flags = _flags(data=data, model=model, task=task, loss=loss, encoder=encoder, latent_dim=latent_dim,
                       batch_size=batch_size, steps=steps, epochs=epochs, eval_every=eval_every, lr=lr,
                       seed=seed, rotate_up=rotate_up, jitter=jitter, subsample=subsample, name=name,
                       max_minutes=max_minutes)
        cfg = config.resolve(config_file, sets, flags)
        from pointset_cli.run.folder import choose_run_dir

        # `--config runs/X/config.yaml` names its run: a resume continues it, anything else is refused there.
        root = choose_run_dir(run_dir, config_file, cfg.name, cfg.model.name, resume)
        saved = root / "config.yaml"
        if resume and saved.is_file():
            cfg = config.resolve(config_file, sets, flags, base_file=saved)
            config.check_resumable(_resolved(config.load(saved)), _resolved(cfg))
        cfg = _resolved(cfg)
        if print_config:
            sys.stdout.write(config.dump_yaml(cfg))
            return

        from pointset_cli.training.parallel import init_distributed, parse_devices

        n_devices = parse_devices(devices)
        init_distributed(coordinator, num_processes, process_id)

        from pointset_cli.training.loop import train as run_training

        reporter = RichReporter(quiet or bool(process_id))
        try:
            result = run_training(cfg, root, resume=resume, overwrite=overwrite, reporter=reporter,
                                  devices=n_devices)
        finally:
            reporter.stop()
        summary = {
            "run_dir": str(result.run_dir),
            "steps": result.step,
            "total_steps": result.total_steps,
            "resumed_from": result.resumed_from,
            "best_val_loss": result.best_val_loss,
            "prior": None if result.prior is None else str(result.prior),
        }
        if fmt == OutputFormat.json:
            print_json(summary)
        else:
            for k, v in summary.items():
                typer.echo(f"{k:14s} {v}")
        if cfg.model.task in SET_TO_SET_TASKS:
            hint(f"next: pointset sample {result.run_dir} --from {cfg.data.path} -n 8 --render {cfg.model.task}.png", quiet)
        else:
            hint(f"next: pointset sample {result.run_dir} -n 16 --render samples.png", quiet)
