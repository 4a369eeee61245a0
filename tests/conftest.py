"""Shared fixtures: where the real data sets live, a tiny real data set, the shipped run, and a CLI runner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """The commands the tests start keep JAX's compilation cache in a folder of the test session,
    not the user's cache folder."""
    os.environ.setdefault("POINTSET_JAX_CACHE", str(tmp_path_factory.mktemp("jax-cache")))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BUNDLED_DATA = REPO / "data"
BUNDLED_RUN = REPO / "checkpoints" / "mnist_mlp"


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory) -> Path:
    """A copy of the shipped pretrained run (commands write into the run folder by default)."""
    if not (BUNDLED_RUN / "config.yaml").is_file():
        pytest.skip("the bundled checkpoint checkpoints/mnist_mlp is missing")
    dst = tmp_path_factory.mktemp("runs") / "mnist_mlp"
    shutil.copytree(BUNDLED_RUN, dst)
    return dst


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (clone the repo beside ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    """The data sets shipped in data/ (MNIST test digits, a ModelNet10 subset): always there."""
    return BUNDLED_DATA


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """The first 60 bundled MNIST digits as a tiny HDF5 data set (train/val/test 40/10/10); read-only."""
    from pointset_testing.tinydata import make_tiny_mnist

    return make_tiny_mnist(tmp_path_factory.mktemp("tiny") / "tiny.h5")


@pytest.fixture(scope="module")
def tiny_sets(tiny_mnist):
    """All sets of tiny_mnist as padded arrays: points [60, N, 2], mask [60, N]."""
    from pointset_cli.data.schema import SetDataset

    with SetDataset(tiny_mnist) as ds:
        points, mask, _ = ds.read(ds.indices())
    return points, mask


@pytest.fixture()
def cli():
    """Invoke the `pointset` Typer app in-process: cli(["info", path]) -> click Result."""
    from typer.testing import CliRunner

    from pointset_cli.cli import app

    runner = CliRunner()

    def invoke(args: list[str], **kwargs):
        return runner.invoke(app, [str(a) for a in args], **kwargs)

    return invoke
