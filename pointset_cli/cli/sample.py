"""`pointset sample RUN`: generate sets (or reconstruct real ones), write files and a PNG grid."""

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


DEFAULT_SETS = 16  # generated or reconstructed without -n


def register(app: typer.Typer) -> None:
    @app.command("sample", cls=Command, epilog=examples(
        "pointset sample runs/tspn -n 16 --render grid.png --out samples/ --format ply",
        "pointset sample runs/tspn --reconstruct mnist.h5 --split test -n 16 --render recon.png",
        "pointset sample runs/complete --from scans/ --out completed/ --format ply",
    ))
    @handle_errors
    def sample(
        run: Path = typer.Argument(..., help="Run folder (from `pointset train`, or checkpoints/<name>)."),
        n: int = typer.Option(None, "-n", "--num", help="How many sets to generate or reconstruct (default 16), or of --from to take (default all)."),
        seed: int = typer.Option(0, "--seed"),
        out: Path = typer.Option(None, "--out", "-o", help="Folder for one file per set, or one .h5, .npz or .npy file holding them all (default: RUN/samples, none with --render alone)."),
        fmt: str = typer.Option("ply", "--format", help="ply, npy, xyz, obj, npz or h5 (one dataset file)."),
        ascii_ply: bool = typer.Option(False, "--ascii", help="ASCII instead of binary PLY."),
        render: Path = typer.Option(None, "--render", help="Write a grid of the sets here (.png, .pdf or .svg); reconstructions beside their inputs."),
        denormalize: bool = typer.Option(False, "--denormalize", help="Back to the source units."),
        label: str = typer.Option(None, "--label", help="Class name or index: a conditional run's label, or an autoencoder's per-class latent prior."),
        size: int = typer.Option(None, "--size", help="Points per set (else the model's cardinality decides)."),
        temperature: float = typer.Option(1.0, "--temperature", help="Spread of the latent prior (1 = fitted)."),
        reconstruct: Path = typer.Option(None, "--reconstruct", help="Reconstruct sets of this dataset instead."),
        from_: Path = typer.Option(None, "--from", help="Sets to feed a run that encodes them (set-to-set or autoencoder): a point file, a folder of them or an .npy/.npz, in normalised units, outputs named after them; or a dataset .h5, whose split's sets a set-to-set run gets as inputs made as eval makes them."),
        split: str = typer.Option(None, "--split", help="Split for --reconstruct or a dataset --from (default test, or val when test holds no sets)."),
        checkpoint: str = CheckpointOption,
        force: bool = ForceOption,
        as_json: bool = JsonOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Generate new sets from a trained run (or reconstruct real ones with --reconstruct, or make a
        set-to-set run's outputs from inputs with --from)."""
        from pointset_cli.errors import OutputExistsError, UsageError
        from pointset_cli.run import generate, outputs

        if reconstruct is not None and from_ is not None:
            raise UsageError("give --reconstruct DATASET or --from PATH, not both")
        if n is not None and n < 1:
            raise UsageError("-n must be at least 1")
        if out is None and render is None:
            out = run / "samples"
        check_json_output(as_json, out)
        if render is not None:
            from pointset_cli.render import picture_format

            picture_format(render)  # before any work: x.pdf got PNG bytes
            if render.exists() and not force:
                raise OutputExistsError(render)
        trained = load_run(run, checkpoint)
        if from_ is not None:
            from pointset_cli.run.set_to_set import from_path

            sets = from_path(trained, from_, split, n, seed, denormalize)
        elif reconstruct is not None:
            sets = generate.reconstructed(trained, reconstruct, split, DEFAULT_SETS if n is None else n, seed, denormalize)
        else:
            sets = generate.generated(trained, DEFAULT_SETS if n is None else n, seed, label, size, temperature,
                                      denormalize)
        written = outputs.write_sets(sets, out, fmt, binary=not ascii_ply, force=force) if out is not None else []
        if render is not None:
            from pointset_cli.render import render_sets

            written.append(render_sets(sets.points, sets.mask, render, sets.captions, trained.config.data.up_axis, force,
                                       inputs=sets.inputs, targets=sets.targets, title=sets.title))
        report_written(written, as_json, {"run": str(run), "step": trained.step, "format": fmt if out else None,
                                          "sets": len(sets.names), "sizes": sets.mask.sum(1).tolist(),
                                          "names": sets.names})
        hint(f"{len(sets.names)} sets from step {trained.step} of {run}", quiet)
