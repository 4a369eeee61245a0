"""`pointset models` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("models", help="(not available yet)")
    def models() -> None:
        not_available("models", "in progress")
