"""`pointset export` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("export", help="(not available yet) arrives with the training issue.")
    def export() -> None:
        not_available("export", "arrives with the training issue")
