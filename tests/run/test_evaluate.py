"""The oracle row of `eval RUN DATA` comes from the run's own training sets, whatever DATA holds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pointset_cli.data.schema import SetDataset
from pointset_cli.errors import UsageError
from pointset_cli.run.evaluate import _oracle_sets
from pointset_testing.tinydata import make_tiny_mnist


def _sets(ds: SetDataset, idx) -> set[bytes]:
    points, mask, _ = ds.read(idx)
    return _keys(points, mask)


def _keys(points, mask) -> set[bytes]:
    """Each set's real points as bytes (padding dropped), so sets compare across padded widths."""
    return {np.asarray(p[m], np.float32).tobytes() for p, m in zip(points, mask, strict=True)}


def test_oracle_sets_come_from_the_runs_training_split(tmp_path):
    own = make_tiny_mnist(tmp_path / "own.h5", n=60)
    held_out = make_tiny_mnist(tmp_path / "held_out.h5", n=24, threshold=100, all_test=True)
    run = SimpleNamespace(dataset_path=own)
    with SetDataset(held_out) as ds, SetDataset(own) as train:
        points, mask, _ = _oracle_sets(run, ds, 8, seed=0)
        assert points.shape[0] == 8
        assert _keys(points, mask) <= _sets(train, train.indices("train"))
        points, mask, _ = _oracle_sets(run, train, 8, seed=0)  # scoring the run's own file: the open file is used
        assert _keys(points, mask) <= _sets(train, train.indices("train"))
        # A run whose dataset has gone: the evaluated file's train split is used, and none at all is an error.
        moved = SimpleNamespace(dataset_path=tmp_path / "gone.h5")
        with pytest.raises(UsageError, match="oracle"):
            _oracle_sets(moved, ds, 8, seed=0)
        points, mask, _ = _oracle_sets(moved, train, 8, seed=0)
        assert _keys(points, mask) <= _sets(train, train.indices("train"))


def test_the_plan_line_counts_the_pairs_scoring_computes():
    from pointset_cli.run.evaluate import plan_line

    # 1,000 sets: paired CDs + the 1,000 x 1,000 retrieval matrix; per generation row s-r, s-s, r-r.
    line = plan_line(1000, "test", True, True, ("mmd_cd", "nna_cd", "mmd_emd"), True, True)
    assert line == ("scoring 1,000 sets of the test split: 4,999,000 Chamfer and at most 2,001,000 EMD pairs; "
                    "--max-sets N scores a seeded subset")
    assert "and 2,001,000 EMD pairs" in plan_line(1000, "test", True, True, ("mmd_emd",), True, True, "all")
    # Sizes vary: no EMD matrices; 5,000 sets: retrieval on 1,000 of them only.
    assert plan_line(5000, "val", True, True, ("mmd_emd", "cov_cd"), False, False) == (
        "scoring 5,000 sets of the val split: 51,005,000 Chamfer and 5,000 EMD pairs")
