"""The optimiser chain: Adam's decay rates from the config, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pointset_cli.errors import UsageError


def test_adam_decays_come_from_the_config():
    from pointset_cli.config import OptimConfig
    from pointset_cli.training.optim import make_optimizer, make_schedule

    cfg = OptimConfig(lr=0.1, warmup_steps=0, clip_norm=0.0, b1=0.5, b2=0.9)
    opt, lr = make_optimizer(cfg, 10), make_schedule(cfg, 10)
    grads = [np.array([1.0, -2.0, 0.5], np.float32), np.array([-3.0, 1.0, 0.5], np.float32)]
    state, m, v = opt.init(np.zeros(3, np.float32)), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):  # Adam by hand, bias-corrected, eps 1e-8
        update, state = opt.update(g, state)
        m, v = 0.5 * m + 0.5 * g, 0.9 * v + 0.1 * g**2
        expected = -float(lr(t - 1)) * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-8)
        np.testing.assert_allclose(update, expected, rtol=1e-5)
    with pytest.raises(UsageError, match="optim.b1"):
        make_optimizer(OptimConfig(b1=1.0), 10)
