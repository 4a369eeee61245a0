"""`make demo` (scripts/demo.sh) as README shows it, with fewer training steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_prepares_trains_samples_renders_and_scores(tmp_path):
    env = {**os.environ, "DEMO_DIR": str(tmp_path / "demo"), "DEMO_STEPS": "20", "VENV": sys.prefix}
    out = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    demo = tmp_path / "demo"
    for name in ("mnist.h5", "run/config.yaml", "run/eval.json", "run/loss.png", "run/prior.npz",
                 "samples.png", "reconstructions.png"):
        assert (demo / name).is_file(), name
    assert len(list((demo / "samples").glob("*.ply"))) == 16 and len(list((demo / "reconstructions").glob("*.ply"))) == 16
    text = " ".join(out.stdout.split())
    assert "Reconstruction, 100 sets, test split of" in text and "Generation, 100 samples vs 100 references" in text
    assert "pointflow protocol" in text and f"Done. Everything is in {demo}/" in text
    assert "JSD: points outside its grid" not in out.stderr  # the demo scores JSD in PointFlow's frame
