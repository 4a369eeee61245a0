"""`pointset train [DATA.h5] --model NAME`: train a set model into a run folder."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from pointset_cli.cli._common import (
    FormatOption,
    OutputFormat,
    QuietOption,
    err_console,
    handle_errors,
    hint,
    make_progress,
    print_json,
)
from pointset_cli.config import ModelConfig
from pointset_cli.errors import UsageError
from pointset_cli.models.builtins import listed
from pointset_cli.models.registry import MODEL_KINDS


class RichReporter:
    """The training progress bar (step, loss, steps/s, time left) on stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = make_progress(quiet)
        self.task: Any = None
        self.t0 = time.perf_counter()
        self.done0 = 0

    def start(self, total: int, done: int) -> None:
        if done and not self.quiet:
            self.message(f"resuming from step {done} of {total}")
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done, status="")
        self.t0, self.done0 = time.perf_counter(), done

    def step(self, step: int, loss: float | None) -> None:
        if loss is None:  # read back at log, eval and checkpoint steps only
            self.progress.update(self.task, completed=step)
            return
        rate = (step - self.done0) / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, completed=step, status=f"loss {loss:.4g}  {rate:.1f} steps/s")

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
        "jitter": "data.jitter", "subsample": "data.subsample",
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
    @app.command("train")
    @handle_errors
    def train(
        data: Path = typer.Argument(None, help="Dataset from `pointset prepare` (or data.path in --config)."),
        model: str = typer.Option(None, "--model", "-m", help=f"Model: {', '.join(listed(*MODEL_KINDS))} (default "
                                  f"{ModelConfig.name}; `pointset models` describes each)."),
        task: str = typer.Option(None, "--task", help="autoencode (set -> z -> set) or conditional (label -> set)."),
        loss: str = typer.Option(None, "--loss", help=f"Set loss: {', '.join(listed('loss'))} "
                                 f"(default {ModelConfig.loss})."),
        encoder: str = typer.Option(None, "--encoder", help=f"Encoder: {', '.join(listed('encoder'))} "
                                    "(default: the model's)."),
        latent_dim: int = typer.Option(None, "--latent-dim", help="Latent size K."),
        batch_size: int = typer.Option(None, "--batch-size", "-b"),
        steps: int = typer.Option(None, "--steps", help="Total optimiser steps (also after --resume)."),
        epochs: int = typer.Option(None, "--epochs", help="Total epochs, when --steps is not given."),
        eval_every: int = typer.Option(None, "--eval-every", help="Validate (and keep the best) every N steps."),
        lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
        seed: int = typer.Option(None, "--seed"),
        rotate_up: bool = typer.Option(None, "--rotate-up/--no-rotate-up", help="Random rotation about the up axis."),
        jitter: float = typer.Option(None, "--jitter", help="Gaussian jitter std (normalised units)."),
        subsample: int = typer.Option(None, "--subsample", help="Keep at most K random points per set."),
        name: str = typer.Option(None, "--name", help="Run name (folder runs/NAME)."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Run folder (default: the folder of a run's own --config, else runs/<name>)."),
        config_file: Path = typer.Option(None, "--config", help="YAML config (e.g. a run's config.yaml)."),
        sets: list[str] = typer.Option([], "--set", help="Override a config key: --set optim.lr=3e-4 (repeatable)."),
        print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config and exit."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run folder where it stopped."),
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
        """Train a set model (autoencoder or conditional generator) into a run folder."""
        from pointset_cli import config

        if data is not None and str(data) == "-":
            raise UsageError("train reads a dataset file (HDF5 needs a path), not stdin (-)")
        flags = _flags(data=data, model=model, task=task, loss=loss, encoder=encoder, latent_dim=latent_dim,
                       batch_size=batch_size, steps=steps, epochs=epochs, eval_every=eval_every, lr=lr,
                       seed=seed, rotate_up=rotate_up, jitter=jitter, subsample=subsample, name=name)
        cfg = config.resolve(config_file, sets, flags)
        from pointset_cli.run.folder import run_of_config

        # `--config runs/X/config.yaml` names its run: a resume continues it, anything else is refused there.
        root = run_dir or run_of_config(config_file) or Path("runs") / cfg.run_name
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
            "resumed_from": result.resumed_from,
            "best_val_loss": result.best_val_loss,
            "prior": None if result.prior is None else str(result.prior),
        }
        if fmt == OutputFormat.json:
            print_json(summary)
        else:
            for k, v in summary.items():
                typer.echo(f"{k:14s} {v}")
        hint(f"next: pointset sample {result.run_dir} -n 16 --render samples.png", quiet)
