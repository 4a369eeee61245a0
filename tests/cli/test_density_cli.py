"""The likelihood models through the command line: train, sample, eval (NLL beside generation metrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest


TINY = ["--steps", "4", "--batch-size", "8", "--eval-every", "2", "--set", "train.checkpoint_every=2",
        "--set", "optim.warmup_steps=1", "-q"]
MODELS = {
    "poisson": ["--model", "poisson", "--set", "model.decoder_options.components=2"],
    "setflow_latent": ["--model", "setflow", "--encoder", "deepsets", "--set", "model.latent_dim=8",
                       "--set", "model.encoder_options.hidden=[16]", "--set", "model.encoder_options.rho=[16]",
                       "--set", "model.decoder_options.steps=2", "--set", "model.decoder_options.hidden=16"],
    "gast": ["--model", "gast", "--set", "model.decoder_options.hidden=16", "--set", "model.decoder_options.heads=2",
             "--set", "model.decoder_options.generator_blocks=1", "--set", "model.decoder_options.critic_blocks=1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_train_sample_and_score_a_density_model(cli, tiny_mnist, tmp_path, name):
    run = tmp_path / name
    trained = cli(["train", tiny_mnist, *MODELS[name], *TINY, "--run-dir", run])
    assert trained.exit_code == 0, trained.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_nll" in r for r in rows) == (name != "gast")
    assert any("kl" in r for r in rows) == (name == "setflow_latent")
    # GAST's objective does not rank checkpoints: it keeps none as "best", and sampling takes the latest
    best = [p for p in (run / "checkpoints" / "best").glob("*") if p.name.isdigit()]
    assert (len(best) == 0) == (name == "gast")

    sampled = cli(["sample", run, "-n", "3", "--seed", "0", "--out", tmp_path / "s", "--format", "npy"])
    assert sampled.exit_code == 0, sampled.stderr
    sets = [np.load(f, allow_pickle=False) for f in sorted((tmp_path / "s").glob("*.npy"))]
    assert len(sets) == 3 and all(s.ndim == 2 and s.shape[1] == 2 and np.isfinite(s).all() for s in sets)

    scored = cli(["eval", run, tiny_mnist, "--split", "test", "--what", "all", "--metrics", "mmd_cd,cov_cd,nna_cd",
                  "--max-sets", "3", "--format", "json", "-q"])
    assert scored.exit_code == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["generation"]["model"]["n_refs"] == 3 and "oracle" in report["generation"]
    assert "reconstruction" not in report and ("likelihood" in report) == (name != "gast")
    if name != "gast":
        nll = report["likelihood"]
        assert np.isfinite(nll["nll"]) and nll["nll"] == pytest.approx(nll["size_nll"] + nll["point_nll"], rel=1e-5)
        assert nll["n_sets"] == 3  # --max-sets applies to the NLL too


def test_gast_takes_no_encoder(cli, tiny_mnist, tmp_path):
    result = cli(["train", tiny_mnist, "--model", "gast", "--encoder", "deepsets", *TINY, "--run-dir", tmp_path / "g"])
    assert result.exit_code == 2 and "cannot be conditioned on an encoder's latent" in result.stderr
