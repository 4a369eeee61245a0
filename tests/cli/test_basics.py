"""The command line's shell: help without JAX, version, exit codes of unknown commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pointset_cli import __version__


def test_help_does_not_import_jax():
    code = "import sys; from pointset_cli.cli import app; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version(cli):
    result = cli(["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "pointset_cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("prepare", "info", "train", "sample", "eval", "export", "models"):
        assert command in out.stdout


def test_unknown_command_is_usage_error(cli):
    assert cli(["frobnicate"]).exit_code == 2


def test_debug_works_after_the_subcommand_too(tmp_path):
    """`pointset info X --debug` was "No such option"; now it shows the traceback, as `--debug info X` does."""
    missing = tmp_path / "nope.h5"
    for args in (["--debug", "info", missing], ["info", missing, "--debug"]):
        out = subprocess.run([sys.executable, "-m", "pointset_cli", *map(str, args)], capture_output=True, text=True,
                             env={**os.environ, "POINTSET_DEBUG": "0"})
        assert out.returncode == 1 and "Traceback" in out.stderr and "no such file" in out.stderr, out.stderr
    out = subprocess.run([sys.executable, "-m", "pointset_cli", "info", missing], capture_output=True, text=True,
                         env={**os.environ, "POINTSET_DEBUG": "0"})
    assert "Traceback" not in out.stderr and out.stderr.strip().endswith("no such file")


def test_help_texts_keep_their_defaults_in_words():
    """Rich read "[default: sphere; none for MNIST]" in `prepare --help` as markup and dropped it."""
    out = subprocess.run([sys.executable, "-m", "pointset_cli", "prepare", "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"})
    assert "global (default: sphere; none for MNIST)" in out.stdout and "up to N (default 2048)" in out.stdout


COMMANDS = ("prepare", "info", "train", "sample", "eval", "export", "models")


def _help(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "pointset_cli", *args, "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_help_gives_flags_no_type_and_ends_with_examples_that_parse():
    import shlex

    import typer.main

    from pointset_cli.cli import app

    group = typer.main.get_command(app)
    assert "<bool>" not in _help()
    for name in COMMANDS:
        text = _help(name)
        assert "<bool>" not in text, name
        examples = [line.strip() for line in text[text.index("Examples:"):].splitlines()[1:] if line.strip()]
        assert 2 <= len(examples) <= 3 and all(e.startswith(f"pointset {name} ") or e == f"pointset {name}"
                                               for e in examples), (name, examples)
        for example in examples:
            # Every option an example uses exists and takes what it is given (the command does not run).
            command = group.commands[name]
            command.make_context(name, shlex.split(example)[2:])


def test_train_help_states_the_config_defaults():
    from pointset_cli.config import DataConfig, ModelConfig

    text = " ".join(_help("train").split())
    assert f"(default {ModelConfig.latent_dim})" in text and f"(default {DataConfig.batch_size})" in text
    assert "(default chamfer)" in text and "(default tspn;" in text


def test_shell_completion_completes_commands_and_model_names():
    def complete(words: str, index: int) -> list[str]:
        env = {**os.environ, "_POINTSET_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        out = subprocess.run([sys.executable, "-m", "pointset_cli"], capture_output=True, text=True, env=env)
        return out.stdout.split()

    assert "--install-completion" in _help()
    assert complete("pointset tr", 1) == ["train"]
    assert complete("pointset train --model ts", 3) == ["tspn"]
    assert complete("pointset train --encoder ", 3) == ["deepsets", "set_transformer"]


def test_install_completion_as_readme_shows(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pointset_cli", "--install-completion", "bash"], capture_output=True,
                         text=True, env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    script = (tmp_path / ".bash_completions" / "pointset.sh").read_text()
    assert "_POINTSET_COMPLETE=complete_bash" in script
    assert str(tmp_path / ".bash_completions" / "pointset.sh") in (tmp_path / ".bashrc").read_text()


def test_the_compilation_cache_goes_to_the_users_cache_folder_unless_told_otherwise(tmp_path):
    from pointset_cli.cli import use_compilation_cache

    env = {"XDG_CACHE_HOME": str(tmp_path)}
    use_compilation_cache(env)
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "pointset" / "jax")
    mine = {"JAX_COMPILATION_CACHE_DIR": "/elsewhere", "POINTSET_JAX_CACHE": str(tmp_path / "c")}
    use_compilation_cache(mine)
    assert mine["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"  # JAX's own setting wins
    off = {"POINTSET_JAX_CACHE": "0"}
    use_compilation_cache(off)
    assert "JAX_COMPILATION_CACHE_DIR" not in off
    moved = {"POINTSET_JAX_CACHE": str(tmp_path / "c")}
    use_compilation_cache(moved)
    assert moved["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "c")


def test_a_training_run_fills_the_compilation_cache(tmp_path, tiny_mnist):
    env = {**os.environ, "POINTSET_JAX_CACHE": str(tmp_path / "cache")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-m", "pointset_cli", "train", str(tiny_mnist), "--model", "poisson",
                          "--steps", "2", "--run-dir", str(tmp_path / "run"), "-q"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert any((tmp_path / "cache").iterdir())  # compiled programs a second run loads instead


def test_install_completion_takes_the_named_shell_even_where_none_is_detected(tmp_path, monkeypatch, capsys):
    """A batch job has no shell among its parents: a named shell is installed, an unnamed or
    unknown one gets one line and exit 2 (typer's own flag ignored the name and printed 'Shell None')."""
    from typer import completion

    from pointset_cli import cli

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("POINTSET_JAX_CACHE", "0")  # main() would point this process's JAX cache at the user's
    monkeypatch.setattr(completion, "_get_shell_name", lambda: None)

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["pointset", *args])
        with pytest.raises(SystemExit) as stop:
            cli.main()
        return stop.value.code or 0

    assert run("--install-completion", "zsh") == 0
    assert "_POINTSET_COMPLETE=complete_zsh" in (tmp_path / ".zfunc" / "_pointset").read_text()
    assert "zsh completion installed" in capsys.readouterr().out
    assert run("--install-completion") == 2
    assert capsys.readouterr().err.strip() == ("pointset: could not tell which shell this runs in; name one of "
                                               "bash, zsh, fish, powershell, pwsh, e.g. pointset --install-completion bash")
    assert run("--show-completion", "tcsh") == 2
    assert "unknown shell 'tcsh'" in capsys.readouterr().err
    assert run("--show-completion", "fish") == 0
    assert "complete --command pointset" in capsys.readouterr().out
