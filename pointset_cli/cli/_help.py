"""How `--help` reads: flags without a type column, and each command's examples at the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer.core import TyperCommand, TyperGroup


def _plain_flags(params: list[Any]) -> list[Any]:
    # A flag takes no value, so a `<bool>` in its type column only suggests that it does.
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class Group(TyperGroup):
    """The root command: the same for its own options (`--debug`, `--version`, completion)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


def examples(*commands: str) -> str:
    """An epilog listing `commands` one per line under "Examples:"."""
    return "\n".join(["Examples:", *(f"  {c}" for c in commands)])



def completer(names: list[str]) -> Callable[[str], list[str]]:
    """Shell completion of an option's value from `names` (after `pointset --install-completion`)."""
    return lambda incomplete: [name for name in names if name.startswith(incomplete)]
