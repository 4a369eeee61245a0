"""`pointset train` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("train", help="(not available yet) arrives with the training issue.")
    def train() -> None:
        not_available("train", "arrives with the training issue")
