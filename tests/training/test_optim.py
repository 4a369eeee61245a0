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



def test_each_player_has_its_own_clip_and_moments():
    """The generator's updates are exactly those of an optimiser of the generator alone, whatever
    the critic's gradients do; with one shared clip, a critic gradient that jumps by 10^6 rescales
    the generator's gradients from step to step, and its Adam moments mix the scales."""
    import jax

    from pointset_cli.config import OptimConfig
    from pointset_cli.training.optim import make_optimizer

    cfg = OptimConfig(lr=0.1, warmup_steps=0, clip_norm=1.0, b1=0.5)
    params = {"critic/~/linear": {"w": np.zeros((2, 3), np.float32)},
              "generator/~/linear": {"w": np.zeros((3, 2), np.float32)},
              "cardinality": {"logits": np.zeros(4, np.float32)}}
    groups = {"critic": ["critic/~/linear"], "rest": ["generator/~/linear", "cardinality"]}
    rng = np.random.default_rng(0)
    grads = [{m: {k: (rng.normal(size=v.shape) * (scale if m.startswith("critic") else 1.0)).astype(np.float32)
                  for k, v in leaves.items()} for m, leaves in params.items()} for scale in (1e6, 1.0, 1e3)]

    def alone(keys):  # the player's own optimiser, fed only its own gradients
        opt = make_optimizer(cfg, 10)
        state, out = opt.init({k: params[k] for k in keys}), []
        for g in grads:
            update, state = opt.update({k: g[k] for k in keys}, state, {k: params[k] for k in keys})
            out.append(update)
        return out

    expected = [{k: v for m in groups for k, v in alone(groups[m])[t].items()} for t in range(len(grads))]
    for opt, same in ((make_optimizer(cfg, 10, players=("critic",)), True), (make_optimizer(cfg, 10), False)):
        state, differs = opt.init(params), []
        for g, want in zip(grads, expected):
            update, state = opt.update(g, state, params)
            gap = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), update, want)
            differs.append(max(jax.tree.leaves(gap)) > 1e-3)
            if same:
                jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), update, want)
        assert same or any(differs)
