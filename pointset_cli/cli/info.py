"""`pointset info`: validate a dataset file and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pointset_cli.cli._help import Command, examples
from pointset_cli.cli._common import FormatOption, OutputFormat, handle_errors, out_console, print_json

BAR_WIDTH = 30


def register(app: typer.Typer) -> None:
    @app.command("info", cls=Command, epilog=examples(
        "pointset info mnist.h5",
        "pointset info mnist.h5 --format json",
        "pointset info runs/tspn",
    ), help="Validate a dataset made by `pointset prepare` and summarise it, or summarise a run folder.")
    @handle_errors
    def info(
        path: Path = typer.Argument(..., help="An HDF5 dataset file, or a run folder.", show_default=False),
        fmt: OutputFormat = FormatOption,
    ) -> None:
        if path.is_dir():
            from pointset_cli.run.summary import summarise

            summary = summarise(path)
            print_json(summary) if fmt == OutputFormat.json else _print_run(summary)
            return
        from pointset_cli.data.schema import validate

        summary = validate(path)
        if fmt == OutputFormat.json:
            print_json(summary)
        else:
            _print_tables(summary)


def _print_key_values(title: str, rows: dict[str, str]) -> None:
    """A two-column table (bold keys) on stdout; values are shown literally, brackets included."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(key, escape(value))
    out_console.print(table)


def _print_run(s: dict[str, Any]) -> None:
    best = s["best"]
    rows = {
        "model": f"{s['model']} (task {s['task']}, encoder {s['encoder'] or 'none'}, latent {s['latent_dim']}, "
                 f"loss {s['loss']})",
        "data": f"{s['dataset']} ({s['dim']}D, up to {s['n_max']} points, {s['classes']} classes)",
        "steps": f"{s['steps_done']} of {s['steps_configured']}"
                 + (f", last loss {s['last_loss']:.4g}" if s["last_loss"] is not None else ""),
        "best": f"step {best['step']}, validation loss {best['val_loss']:.4g}" if best else "no validation yet",
        "checkpoints": f"latest {s['checkpoints']['latest'] or 'none'}, best {s['checkpoints']['best'] or 'none'}",
        "prior": "fitted" if s["prior"] else "none",
        "evaluated": "eval.json" if s["evaluated"] else "not yet (pointset eval RUN)",
    }
    _print_key_values(f"{s['run']} (run)", rows)


def _print_tables(s: dict[str, Any]) -> None:
    from rich.table import Table

    sizes = s["sizes"]
    rows = {
        "sets": f"{s['n_sets']} ({', '.join(f'{n} {k}' for k, n in s['splits'].items())})",
        "points": f"{s['dim']}D, padded to {s['n_max']}; per set min {sizes['min']} / mean {sizes['mean']:.1f} "
        f"/ max {sizes['max']}",
        "range": " ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(s["range"]["min"], s["range"]["max"])),
        "normalisation": s["normalization"],
        "sampler": f"{s['sampler']} (seed {s['seed']}, n_points {s['n_points']}, max_points {s['max_points']})",
        "created": f"{s['provenance'].get('date', '?')} by pointset {s['provenance'].get('version', '?')}",
        "command": " ".join(s["provenance"].get("argv", [])),
    }
    _print_key_values(f"{s['path']} (schema v{s['schema_version']})", rows)

    classes = Table(title="classes", title_justify="left")
    for col in ("class", *s["class_counts"], "total"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for i, name in enumerate(s["classes"]):
        counts = [c[i] for c in s["class_counts"].values()]
        classes.add_row(name, *map(str, counts), str(sum(counts)))
    out_console.print(classes)

    hist = sizes["histogram"]
    if hist["counts"]:
        table = Table(title="set sizes", title_justify="left")
        table.add_column("points", justify="right")
        table.add_column("sets", justify="right")
        table.add_column("")
        top = max(hist["counts"]) or 1
        edges = hist["edges"]
        for k, count in enumerate(hist["counts"]):
            table.add_row(f"{edges[k]:.0f}-{edges[k + 1]:.0f}", str(count), "#" * round(BAR_WIDTH * count / top))
        out_console.print(table)
