"""Every malformed file in tests/io/corpus fails with one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointset_cli.errors import InputError
from pointset_cli.io import read_shape
from pointset_cli.io.mnist import is_mnist_file, read_mnist

CORPUS = Path(__file__).resolve().parent / "corpus"


def expected_errors() -> dict[str, str]:
    """file name -> substring of its error, from EXPECTED.txt (written by make_corpus.py)."""
    lines = (CORPUS / "EXPECTED.txt").read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if line and not line.startswith("#"))


def test_corpus_is_complete():
    expected = expected_errors()
    assert len(expected) >= 20
    assert all((CORPUS / name).is_file() for name in expected)


@pytest.mark.parametrize(("name", "substring"), sorted(expected_errors().items()))
def test_malformed_file_gives_one_line_error(name, substring):
    path = CORPUS / name
    reader = read_mnist if is_mnist_file(path) else read_shape
    with pytest.raises(InputError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert substring in message
    assert "\n" not in message
    first_word = info.value.message.split()[0]
    assert first_word.isupper() or not first_word[0].isupper()  # lowercase start unless an acronym (PLY, ...)
    assert not message.endswith(".")
