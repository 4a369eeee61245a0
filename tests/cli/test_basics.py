"""The command line's shell: help without JAX, version, exit codes of unknown commands."""

from __future__ import annotations

import os
import subprocess
import sys

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
