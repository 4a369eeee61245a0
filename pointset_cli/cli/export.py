"""`pointset export RUN --what samples|reconstructions|model`: sets as files, the model as NPZ or StableHLO."""

from __future__ import annotations

from pathlib import Path

import typer

from pointset_cli.cli._help import Command, examples
from pointset_cli.cli._common import (
    CheckpointOption,
    ForceOption,
    JsonOption,
    QuietOption,
    check_json_output,
    handle_errors,
    hint,
    load_run,
    report_written,
)
from pointset_cli.errors import UsageError

WHAT = ("samples", "reconstructions", "model")


def register(app: typer.Typer) -> None:
    @app.command("export", cls=Command, epilog=examples(
        "pointset export runs/tspn --what model --format npz --out tspn.npz",
        "pointset export runs/tspn --what model --format stablehlo --out tspn_hlo/",
        "pointset export runs/tspn --what samples -n 32 --format ply --out samples/",
    ))
    @handle_errors
    def export(
        run: Path = typer.Argument(..., help="Run folder."),
        what: str = typer.Option("samples", "--what", help="samples, reconstructions or model."),
        fmt: str = typer.Option(None, "--format", help="Sets: ply obj xyz npy npz h5 (default ply). Model: npz or stablehlo."),
        out: Path = typer.Option(None, "--out", "-o", help="Output folder, or one .h5/.npz/.npy file for all sets (or the model .npz) (default: RUN/params.npz, RUN/stablehlo or RUN/<what>)."),
        ascii_ply: bool = typer.Option(False, "--ascii", help="ASCII instead of binary PLY."),
        n: int = typer.Option(16, "-n", "--num", help="Sets to generate / reconstruct."),
        seed: int = typer.Option(0, "--seed"),
        data: Path = typer.Option(None, "--data", help="Dataset for reconstructions (default: the run's)."),
        split: str = typer.Option("test", "--split"),
        denormalize: bool = typer.Option(False, "--denormalize", help="Sets back to the source units."),
        batch_size: int = typer.Option(16, "--batch-size", help="StableHLO: the batch size baked into the artifacts."),
        checkpoint: str = CheckpointOption,
        force: bool = ForceOption,
        as_json: bool = JsonOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Export generated or reconstructed sets as files, or the trained model (NPZ / StableHLO)."""
        from pointset_cli.run import export as lib
        from pointset_cli.run import generate, outputs

        if what not in WHAT:
            raise UsageError(f"--what must be one of {', '.join(WHAT)}")
        check_json_output(as_json, out)
        trained = load_run(run, checkpoint)
        summary: dict = {"run": str(run), "step": trained.step, "what": what}
        if what == "model":
            fmt = fmt or "npz"
            if fmt == "npz":
                paths = [lib.write_params_npz(trained.params, out or run / "params.npz", force)]
            elif fmt == "stablehlo":
                paths = lib.write_stablehlo(trained, out or run / "stablehlo", batch_size, force)
            else:
                raise UsageError(f"--what model takes --format npz or stablehlo, not {fmt!r}")
        else:
            if what == "samples":
                sets = generate.generated(trained, n, seed, denormalize=denormalize)
            else:
                sets = generate.reconstructed(trained, data, split, n, seed, denormalize)
            paths = outputs.write_sets(sets, out or run / what, fmt or "ply", binary=not ascii_ply, force=force)
            summary |= {"format": fmt or "ply", "sets": len(sets.names), "sizes": sets.mask.sum(1).tolist()}
        report_written(paths, as_json, summary)
        hint(f"exported {what} of step {trained.step} to {paths[0].parent if len(paths) > 1 else paths[0]}", quiet)
