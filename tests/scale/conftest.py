"""The tiny MNIST dataset fixture of tests/faults."""

from faults.conftest import tiny_mnist  # noqa: F401
