"""PNG renders of 2D and 3D sets; an existing file is not replaced."""

from __future__ import annotations

import numpy as np
import pytest

from pointset_cli.errors import OutputExistsError


def test_render_grid_and_refusal(tiny_sets, tmp_path):
    from pointset_cli.render import render_sets

    points, mask = tiny_sets
    out = render_sets(points[:5], mask[:5], tmp_path / "g.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputExistsError):
        render_sets(points[:5], mask[:5], tmp_path / "g.png")
    cube = np.random.default_rng(0).normal(size=(2, 30, 3)).astype(np.float32)
    render_sets(cube, np.ones((2, 30), bool), tmp_path / "g3.png")
    assert (tmp_path / "g3.png").stat().st_size > 1000


def test_the_suffix_chooses_the_format_and_others_are_refused(tiny_sets, tmp_path):
    """`--render x.pdf` wrote PNG bytes into x.pdf (the command's side: tests/cli/test_sample.py)."""
    from pointset_cli.errors import UsageError
    from pointset_cli.render import render_sets

    points, mask = tiny_sets
    magic = {"g.png": b"\x89PNG", "g.pdf": b"%PDF", "g.svg": b"<?xml"}
    for name, start in magic.items():
        assert render_sets(points[:3], mask[:3], tmp_path / name).read_bytes().startswith(start), name
    with pytest.raises(UsageError, match=r"\.png, \.pdf, \.svg"):
        render_sets(points[:3], mask[:3], tmp_path / "g.jpg")
    assert not (tmp_path / "g.jpg").exists()
