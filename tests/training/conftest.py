"""Tiny real data for the training tests: a few bundled MNIST digits as 2D sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinydata import make_tiny_mnist  # noqa: E402  (tests/training is on sys.path for its conftest)


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    return make_tiny_mnist(tmp_path_factory.mktemp("tiny") / "tiny.h5")
