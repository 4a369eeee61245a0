"""The command line's shell: help without JAX, version, exit codes of unknown commands."""

from __future__ import annotations

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
