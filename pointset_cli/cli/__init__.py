"""The `pointset` command line: one module per command, each thin (parse, call, print).

Nothing here imports JAX: `pointset --help` must answer at once. Commands import the
library inside their function bodies.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer

from pointset_cli.version import __version__
from pointset_cli.cli import evaluate, export, info, models, prepare, sample, train
from pointset_cli.cli._help import Group

app = typer.Typer(
    name="pointset",
    cls=Group,
    help="Machine learning on point clouds treated as sets: prepare, train, sample, eval, export.",
    no_args_is_help=True,
    add_completion=False,  # our own --install-completion/--show-completion below take the shell's name
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pointset {__version__}")
        raise typer.Exit()


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _completion_shell(value: str) -> str:
    """The shell named (SHELLS), or the one this runs in; one line and exit 2 when neither is known.
    (Typer's own flag ignores a named shell and cannot install from a batch job, where no shell is
    among the parent processes.)"""
    from typer import completion  # typer is pinned to 0.29: its install() and shell detection

    shell = value.lower() or completion._get_shell_name()
    if shell not in SHELLS:
        said = f"unknown shell '{value}'" if value else "could not tell which shell this runs in"
        typer.echo(f"pointset: {said}; name one of {', '.join(SHELLS)}, e.g. pointset --install-completion bash",
                   err=True)
        raise typer.Exit(2)
    return shell


def _install_completion(ctx: typer.Context, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer import completion

    shell, path = completion.install(shell=_completion_shell(value), prog_name="pointset")
    typer.echo(f"{shell} completion installed in {path}; it takes effect in a new shell")
    raise typer.Exit()


def _show_completion(ctx: typer.Context, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer import completion

    typer.echo(completion.get_completion_script(prog_name="pointset", complete_var="_POINTSET_COMPLETE",
                                                shell=_completion_shell(value)))
    raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    install_completion: str = typer.Option(
        None, "--install-completion", metavar="[SHELL]", callback=_install_completion,
        is_eager=True, expose_value=False, help=f"Install tab completion for SHELL ({', '.join(SHELLS)}; "
        "default: the shell this runs in)."),
    show_completion: str = typer.Option(
        None, "--show-completion", metavar="[SHELL]", callback=_show_completion,
        is_eager=True, expose_value=False, help="Print the completion script for SHELL, to install by hand."),
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


def _shell_optional(args: list[str]) -> list[str]:
    """`pointset --install-completion` (or --show-completion) with no shell named: the shell this
    runs in (an empty value), as typer's own flag did; typer's options cannot take an optional value."""
    out = list(args)
    for flag in ("--install-completion", "--show-completion"):
        if flag in out:
            at = out.index(flag) + 1
            if at == len(out) or out[at].startswith("-"):
                out.insert(at, "")
    return out


def use_compilation_cache(env: dict[str, str] = os.environ) -> None:  # type: ignore[assignment]
    """Point JAX's persistent compilation cache at the user's cache folder, unless JAX is told
    otherwise already (JAX_COMPILATION_CACHE_DIR) or POINTSET_JAX_CACHE=0; POINTSET_JAX_CACHE=DIR
    moves it. A second run of the same command then loads its compiled steps instead of compiling
    them again (steps that call back into Python, as the numba kernels do, are never cached). Set
    through the environment, so nothing imports JAX before a command needs it."""
    choice = env.get("POINTSET_JAX_CACHE", "")
    if choice == "0":
        return
    # A cache entry that cannot be written (a full disk) or read back (cut short by a kill) only
    # costs a compilation, which JAX then does; its warning would break "one line per problem".
    # Also when the cache is JAX's own setting.
    warnings.filterwarnings("ignore", message="Error (reading|writing) persistent compilation cache",
                            category=UserWarning)
    if "JAX_COMPILATION_CACHE_DIR" in env:
        return
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env["JAX_COMPILATION_CACHE_DIR"] = choice or str(base / "pointset" / "jax")
    # JAX's default keeps only compilations over 1 s; the start of a command is many shorter ones.
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


def main() -> None:
    from typer.completion import completion_init  # typer's shell completion, which add_completion would have set up

    completion_init()
    use_compilation_cache()
    app(args=_shell_optional(_debug_first(sys.argv[1:])), prog_name="pointset")
