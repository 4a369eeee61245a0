"""The tiny MNIST dataset of tests/training, shared by the fault tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.tinydata import make_tiny_mnist


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    return make_tiny_mnist(tmp_path_factory.mktemp("tiny") / "tiny.h5")
