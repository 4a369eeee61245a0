"""`pointset models`: the registered encoders, decoders and whole models (likelihood, adversarial), with parameter counts."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import FormatOption, OutputFormat, handle_errors, out_console, print_json


def register(app: typer.Typer) -> None:
    @app.command("models", help="List the models: name, kind, cardinality, default encoder, parameters.")
    @handle_errors
    def models(format: OutputFormat = FormatOption) -> None:
        from pointset_cli.models.catalog import DEFAULT_DATA, catalog

        rows = catalog()
        if format is OutputFormat.json:
            print_json({"data": {"dim": DEFAULT_DATA.dim, "n_max": DEFAULT_DATA.n_max,
                                 "n_classes": DEFAULT_DATA.n_classes}, "models": list(rows)})
            return
        from rich.table import Table

        table = Table(title=f"models (params at D={DEFAULT_DATA.dim}, N={DEFAULT_DATA.n_max}, "
                            f"{DEFAULT_DATA.n_classes} classes; decoders with their default encoder)")
        for column in ("name", "kind", "cardinality", "encoder", "params", "description"):
            table.add_column(column, justify="right" if column == "params" else "left")
        for row in rows:
            table.add_row(row["name"], row["kind"], row["cardinality"] or "-", row["default_encoder"] or "-",
                          f"{row['params']:,}", row["description"])
        out_console.print(table)
