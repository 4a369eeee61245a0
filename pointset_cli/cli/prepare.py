"""`pointset prepare`: raw shapes, point files or MNIST -> one HDF5 dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from pointset_cli.cli._help import Command, examples
from pointset_cli.cli._common import (
    ForceOption,
    FormatOption,
    OutputFormat,
    QuietOption,
    err_console,
    handle_errors,
    make_progress,
    out_console,
    print_json,
)
from pointset_cli.errors import shown

HELP = "\n\n".join([
    (
        'Read shapes into one HDF5 dataset (see `pointset info`).'
    ),
    (
        'INPUTS are files, folders (read recursively) and glob patterns. Meshes (OBJ, OFF, STL, PLY, GLB) are '
        'sampled on their surface; point files (PLY, PCD, XYZ/TXT/PTS, NPY, NPZ) are read as points; MNIST '
        'IDX (the images file; its labels file is found beside it) and CSV files become 2D sets.'
    ),
    (
        "Labels: a file's class is the folder holding it, skipping a train/val/valid/test folder, so "
        '`<class>/<split>/<file>` and `<class>/<file>` both work; MNIST files carry digit labels "0".."9". '
        'Splits come from that layout; other sets are train unless --val-fraction/--test-fraction draw some '
        'into val/test (seeded with --seed); with train/test folders only, --val-fraction draws val from train.'
    ),
])


def register(app: typer.Typer) -> None:
    @app.command("prepare", cls=Command, help=HELP, epilog=examples(
        "pointset prepare data/mnist_t10k -o mnist.h5 --val-fraction 0.1 --test-fraction 0.1",
        "pointset prepare ModelNet10/ -o mn10.h5 --points 1024 --normalize sphere --val-fraction 0.05",
        "pointset prepare scans/*.ply -o scans.h5 --max-points 4096 --skip-bad",
    ))
    @handle_errors
    def prepare(
        inputs: list[str] = typer.Argument(..., help="Files, folders or glob patterns.", show_default=False),
        output: Path = typer.Option(..., "--output", "-o", help="The HDF5 file to write.", show_default=False),
        points: int | None = typer.Option(
            None, "--points", help="Every set gets exactly N points (subsampled, or sampled on a mesh)."
        ),
        max_points: int | None = typer.Option(
            None, "--max-points", help="Sets keep their own size up to N (default 2048); meshes get N points."
        ),
        sampler: str = typer.Option("surface", "--sampler", help="surface | fps | poisson (poisson needs open3d)."),
        normalize: str | None = typer.Option(
            None, "--normalize", help="none | sphere | cube | global (default: sphere; none for MNIST)."
        ),
        threshold: int = typer.Option(127, "--threshold", help="MNIST: pixels above this become points."),
        val_fraction: float = typer.Option(0.0, "--val-fraction", help="Share of sets put in val: of those without a layout split, and of the layout's train sets when it has no val folders."),
        test_fraction: float = typer.Option(0.0, "--test-fraction", help="Share of sets without a layout split put in test."),
        split_from_layout: bool = typer.Option(
            True, "--split-from-layout/--no-split-from-layout", help="Use train/val/test folders as splits."
        ),
        stratify: bool = typer.Option(
            False, "--stratify", help="Draw --val/--test-fraction from each class in its share (to within one set)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seeds sampling and the split draw."),
        workers: int = typer.Option(os.cpu_count() or 1, "--workers", help="Reader processes (1: no pool)."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable files and list them at the end."),
        force: bool = ForceOption,
        quiet: bool = QuietOption,
        fmt: OutputFormat = FormatOption,
    ) -> None:
        from pointset_cli.data.prepare import PrepareOptions
        from pointset_cli.data.prepare import prepare as run_prepare
        from pointset_cli.errors import UsageError

        if points is not None and max_points is not None:
            raise UsageError("give --points or --max-points, not both")
        opts = PrepareOptions(
            points=points, max_points=max_points or 2048, sampler=sampler, normalize=normalize,
            threshold=threshold, val_fraction=val_fraction, test_fraction=test_fraction,
            split_from_layout=split_from_layout, stratify=stratify, seed=seed, workers=workers, skip_bad=skip_bad,
        )
        with make_progress(quiet) as progress:
            task = progress.add_task("reading", total=None, status="")

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = run_prepare(inputs, output, opts, force=force, argv=["pointset", *sys.argv[1:]],
                                 on_progress=on_progress)
        if report.passed_over:
            err_console.print(f"passed over {len(report.passed_over)} folder entries that are not regular files:",
                              highlight=False)
            for item in report.passed_over:
                err_console.print(f"  {shown(item['path'])}: {item['reason']}", highlight=False, markup=False)
        if report.skipped:
            err_console.print(f"skipped {len(report.skipped)} bad file(s):", highlight=False)
            for item in report.skipped:
                err_console.print(f"  {shown(item['path'])}: {item['error']}", highlight=False, markup=False)
        if fmt == OutputFormat.json:
            print_json(report.to_dict())
            return
        splits = ", ".join(f"{n} {name}" for name, n in report.splits.items())
        out_console.print(
            f"wrote {report.output}: {report.n_sets} sets from {report.n_files} files, {len(report.classes)} classes "
            f"({splits}), {report.dim}D, up to {report.n_max} points, normalisation {report.normalization}, "
            f"sampler {report.sampler}",
            highlight=False, markup=False,
        )
