"""Checkpoints: one corrupt byte in the best checkpoint's metrics file leaves the run usable."""

from __future__ import annotations

import pytest

from pointset_cli import config
from pointset_cli.run.checkpoints import load_params
from pointset_cli.training.loop import StderrReporter, train
from pointset_testing.tinydata import TINY_MODEL


class _Messages(StderrReporter):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


@pytest.mark.slow
def test_a_corrupt_best_metrics_file_falls_back_to_latest_and_is_dropped_on_resume(tiny_mnist, tmp_path):
    cfg = config.resolve(None, [*TINY_MODEL, "train.steps=4"], {"data.path": str(tiny_mnist)})
    run = tmp_path / "run"
    train(cfg, run)
    (best,) = [p for p in (run / "checkpoints" / "best").iterdir() if p.name.isdigit()]
    metrics = best / "metrics" / "metrics"
    raw = bytearray(metrics.read_bytes())
    raw[2] = 0xFF  # not UTF-8 any more
    metrics.write_bytes(bytes(raw))

    warnings = []
    params, step = load_params(run / "checkpoints", warnings.append)
    assert step == 4 and params  # from latest/
    assert len(warnings) == 1 and "unreadable metrics file; using the latest checkpoint" in warnings[0]
    assert best.exists()  # reading changes nothing

    reporter = _Messages()
    resumed = train(config.resolve(None, [*TINY_MODEL, "train.steps=6"], {"data.path": str(tiny_mnist)}), run,
                    resume=True, reporter=reporter)
    assert resumed.resumed_from == 4 and resumed.step == 6
    assert any(f"{best}: checkpoint with an unreadable metrics file ignored and removed" in m for m in reporter.lines)
    warnings.clear()
    assert load_params(run / "checkpoints", warnings.append)[1] == 6 and not warnings  # a new best was kept
