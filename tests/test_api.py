"""The Python API (`import pointset_cli as ps`): distances against brute force, a run used as a
library, and README's example run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import pointset_cli as ps
from pointset_cli.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def _brute_cd(a: np.ndarray, b: np.ndarray) -> float:
    d = ((a[:, None] - b[None]) ** 2).sum(-1)
    return d.min(1).mean() + d.min(0).mean()


def _brute_emd(a: np.ndarray, b: np.ndarray) -> float:
    d = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    rows, cols = linear_sum_assignment(d)
    return d[rows, cols].mean()


def test_import_does_not_load_jax():
    code = "import sys, pointset_cli as ps; ps.__version__; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_chamfer_and_emd_match_brute_force_and_ignore_order(bundled_data):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    assert ps.chamfer(a, b) == pytest.approx(_brute_cd(a, b), rel=1e-5)
    assert ps.chamfer(a[rng.permutation(40)], b) == pytest.approx(ps.chamfer(a, b), rel=1e-6)
    c = rng.normal(size=(25, 3))
    assert ps.emd(b, c) == pytest.approx(_brute_emd(b, c), rel=1e-5)
    # Lists of sets of different sizes, pair by pair.
    sets, others = [a, b], [b, c]
    assert ps.chamfer(sets, others) == pytest.approx([_brute_cd(a, b), _brute_cd(b, c)], rel=1e-5)
    with pytest.raises(UsageError, match="equal size"):
        ps.emd(a, b)
    with pytest.raises(UsageError, match="as many sets"):
        ps.chamfer([a, b], [a])


def test_read_sets_gives_each_set_its_own_size(tiny_mnist):
    from pointset_cli.data.schema import SetDataset

    sets = ps.read_sets(tiny_mnist, split="test")
    with SetDataset(tiny_mnist) as ds:
        idx = ds.indices("test")
        points, mask, _ = ds.read(idx)
    assert [len(s) for s in sets] == mask.sum(1).tolist()
    assert np.array_equal(sets[3], points[3][mask[3]])


@pytest.mark.slow
def test_a_run_as_a_library(shipped_run, tiny_mnist):
    run = ps.load_run(shipped_run)
    digits = ps.read_sets(tiny_mnist, split="test")[:8]
    z = run.encode(digits)
    assert z.shape == (8, run.trained.model.latent_width)
    rng = np.random.default_rng(0)
    shuffled = [d[rng.permutation(len(d))] for d in digits]
    assert np.allclose(run.encode(shuffled), z, atol=1e-4)  # invariant to each set's order
    recon = run.reconstruct(digits)
    assert [len(r) for r in recon] == [len(d) for d in digits]
    own = np.array([ps.chamfer(d, r) for d, r in zip(digits, recon, strict=True)])
    other = np.array([ps.chamfer(digits[(i + 1) % 8], r) for i, r in enumerate(recon)])
    assert (own < other).mean() >= 0.75 and own.mean() < other.mean() / 2  # follows its input
    a, b = run.sample(4, seed=0), run.sample(4, seed=1)
    assert len(a) == 4 and all(s.ndim == 2 and s.shape[1] == 2 for s in a)
    assert not np.array_equal(a[0], b[0])
    assert ps.load_run(shipped_run, checkpoint=str(run.step)).step == run.step


@pytest.mark.slow
def test_readme_python_example_runs_as_written(shipped_run, tiny_mnist, tmp_path):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Python\n.*?```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "checkpoints").mkdir()
    os.symlink(shipped_run, tmp_path / "checkpoints" / "mnist_mlp")
    os.symlink(tiny_mnist, tmp_path / "mnist.h5")  # prepared from the bundled digits, as README's recipe
    code += "\nassert len(sevens) == 4 and 0 <= scores['cov_cd'] <= 1 and scores['mmd_cd'] > 0\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[0] == "70000 (8, 131) True"
    assert re.fullmatch(r"CD \S+e-0\d, EMD 0\.\d{3}", out.stdout.splitlines()[1])
