"""`pointset sample` (not available yet)."""

from __future__ import annotations

import typer

from pointset_cli.cli._common import not_available


def register(app: typer.Typer) -> None:
    @app.command("sample", help="(not available yet) arrives with the training issue.")
    def sample() -> None:
        not_available("sample", "arrives with the training issue")
