"""`pointset eval` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("eval", help="(not available yet) arrives with the metrics issue.")
    def evaluate() -> None:
        not_available("eval", "arrives with the metrics issue")
