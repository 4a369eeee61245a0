"""`pointset models`: the registered encoders, decoders and whole models (likelihood, adversarial)."""

from __future__ import annotations

import typer

from pointset_cli.cli._help import Command, examples
from pointset_cli.cli._common import FormatOption, OutputFormat, handle_errors, out_console, print_json

# Below this many columns the descriptions get a table of their own instead of a cramped column.
_WIDE = 120


def register(app: typer.Typer) -> None:
    @app.command("models", cls=Command, epilog=examples(
        "pointset models",
        "pointset models --params --format json",
    ))
    @handle_errors
    def models(
        params: bool = typer.Option(False, "--params", help="Also count each model's parameters at its "
                                    "defaults (traces every model: a few seconds)."),
        format: OutputFormat = FormatOption,
    ) -> None:
        """List the models: name, kind, how it decides its size, default encoder, description."""
        from pointset_cli.models.catalog import DEFAULT_DATA, catalog

        rows = catalog(with_params=params)
        if format is OutputFormat.json:
            doc = {"models": list(rows)}
            if params:
                doc["data"] = {"dim": DEFAULT_DATA.dim, "n_max": DEFAULT_DATA.n_max,
                               "n_classes": DEFAULT_DATA.n_classes}
            print_json(doc)
            return
        _print_tables(rows, params, DEFAULT_DATA)


def _print_tables(rows: tuple[dict, ...], params: bool, data) -> None:
    from rich import box
    from rich.table import Table

    title = "models"
    if params:
        title += f" (params at D={data.dim}, N={data.n_max}, {data.n_classes} classes; decoders with their default encoder)"
    wide = out_console.width >= _WIDE
    facts = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("name", "kind", "cardinality", "encoder") + (("params",) if params else ()):
        facts.add_column(column, justify="right" if column == "params" else "left", no_wrap=True)
    if wide:
        facts.add_column("description", overflow="fold")
    for row in rows:
        cells = [row["name"], row["kind"], row["cardinality"] or "-", row["default_encoder"] or "-"]
        cells += [f"{row['params']:,}"] if params else []
        facts.add_row(*cells, *([row["description"]] if wide else []))
    out_console.print(facts)
    if not wide:
        described = Table(box=box.SIMPLE_HEAD)
        described.add_column("name", no_wrap=True)
        described.add_column("description", overflow="fold")
        for row in rows:
            described.add_row(row["name"], row["description"])
        out_console.print(described)
