"""The `pointset` command line: one module per command, each thin (parse, call, print).

Nothing here imports JAX: `pointset --help` must answer at once. Commands import the
library inside their function bodies.
"""

from __future__ import annotations

import os
import sys

import typer

from pointset_cli.version import __version__
from pointset_cli.cli import evaluate, export, info, models, prepare, sample, train
from pointset_cli.cli._help import Group

app = typer.Typer(
    name="pointset",
    cls=Group,
    help="Machine learning on point clouds treated as sets: prepare, train, sample, eval, export.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pointset {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    if debug:
        os.environ["POINTSET_DEBUG"] = "1"


for _module in (prepare, info, train, sample, evaluate, export, models):
    _module.register(app)


def _debug_first(args: list[str]) -> list[str]:
    """`pointset train ... --debug` as `pointset --debug train ...`: the flag belongs to the root
    command, but users put it last. Arguments after `--` are left alone."""
    end = args.index("--") if "--" in args else len(args)
    head = args[:end]
    if "--debug" not in head:
        return args
    return ["--debug", *[a for a in head if a != "--debug"], *args[end:]]


def main() -> None:
    app(args=_debug_first(sys.argv[1:]), prog_name="pointset")
