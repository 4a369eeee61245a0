"""`pointset prepare` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("prepare", help="(not available yet)")
    def prepare() -> None:
        not_available("prepare", "in progress")
