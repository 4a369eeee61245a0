"""The numba kernels called as XLA FFI handlers: a program that searches nearest neighbours and sorts
is written to JAX's persistent compilation cache, and a fresh process runs it from there (a
program calling back into Python through `jax.pure_callback` was never cached)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pointset_cli.distances import xla_ffi

ROOT = Path(__file__).resolve().parents[2]
SIZES = [37, 20, 1, 0]  # real points of y in each of the 4 sets: whole, part, one, none

PROGRAM = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
from pointset_cli.distances.nearest import nearest_index
from pointset_cli.models.sorting import sort_order
x = np.random.default_rng(0).normal(size=(4, 37, 3)).astype(np.float32)
mask = np.arange(37) < np.array(json.loads(sys.argv[2]))[:, None]
step = jax.jit(lambda x: (nearest_index(x, x[:, ::-1], mask, use_kernel=True), sort_order(x[..., 0], 1)))
index, (perm, rank) = step(x)
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "index": np.asarray(index).tolist(), "perm": np.asarray(perm).tolist()}))
"""


@pytest.mark.skipif(not xla_ffi.available(), reason="numba is not installed")
def test_a_program_calling_the_kernels_runs_from_the_compilation_cache_in_a_fresh_process(tmp_path):
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path / "cache"), json.dumps(SIZES)], capture_output=True,
                             text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
                                                       "PATH": "/usr/bin:/bin"}, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        runs.append(json.loads(out.stdout))
    assert runs[0]["hits"] == 0 and runs[1]["hits"] >= 1  # compiled once, then served
    assert runs[0]["index"] == runs[1]["index"] and runs[0]["perm"] == runs[1]["perm"]
    x = np.random.default_rng(0).normal(size=(4, 37, 3)).astype(np.float32)
    y = x[:, ::-1]
    mask = np.arange(37) < np.array(SIZES)[:, None]  # [4, M]
    d = np.where(mask[:, None, :], ((x[:, :, None] - y[:, None]) ** 2).sum(-1), np.inf)  # [4, N, M]
    expected = np.where(np.isinf(d).all(-1), 0, np.argmin(d, -1))
    assert np.array_equal(runs[1]["index"], expected)
    assert np.array_equal(runs[1]["perm"], np.argsort(x[..., 0], axis=1, kind="stable"))
