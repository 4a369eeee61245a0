"""`pointset info` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("info", help="(not available yet)")
    def info() -> None:
        not_available("info", "in progress")
