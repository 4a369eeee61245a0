"""Fixtures of the CLI tests: a copy of the shipped pretrained run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

BUNDLED_RUN = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist_tspn"


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory):
    """A copy of the shipped run (commands write into the run folder by default)."""
    if not (BUNDLED_RUN / "config.yaml").is_file():
        pytest.skip("the bundled checkpoint checkpoints/mnist_tspn is missing")
    dst = tmp_path_factory.mktemp("runs") / "mnist_tspn"
    shutil.copytree(BUNDLED_RUN, dst)
    return dst
