"""`pointset eval RUN`: which split it scores by default, what its tables and JSON say about how
they were computed, and the named phases of its progress."""

from __future__ import annotations

import json

import pytest

from pointset_testing.tinydata import make_tiny_mnist


@pytest.fixture(scope="module")
def val_only(tmp_path_factory):
    """Digits split 50/10/0, as `prepare --val-fraction 0.1` alone makes them: no test split."""
    return make_tiny_mnist(tmp_path_factory.mktemp("val_only") / "val_only.h5", no_test=True)


@pytest.mark.slow
def test_eval_and_reconstruct_score_the_val_split_when_test_holds_no_sets(cli, shipped_run, val_only, tmp_path):
    result = cli(["eval", shipped_run, val_only, "--what", "recon"])
    assert result.exit_code == 0, result.stderr  # was: "split 'test' is empty"
    title = " ".join(result.stdout.split())
    assert (f"Reconstruction, 10 sets, val split of {val_only} (normalisation: none; distances in its units); "
            "EMD by scipy, exact") in title
    report = json.loads((shipped_run / "eval.json").read_text())
    assert report["split"] == "val" and report["n_sets"] == 10 and report["reconstruction"]["emd_solver"] == "scipy"
    assert report["units"]["cd"] == "squared units" and report["table_scale"] == {
        "mmd_cd": 1e3, "mmd_emd": 1e2, "cov_cd": 100.0, "cov_emd": 100.0, "nna_cd": 100.0, "nna_emd": 100.0,
        "jsd": 1e2, "label_nn_cd": 100.0, "cd": 1e3, "emd": 1e2, "cd_own_size": 1e3, "cardinality_accuracy": 100.0,
        "retrieval_accuracy": 100.0, "fscore": 100.0, "precision": 100.0, "recall": 100.0}
    out = tmp_path / "r"
    result = cli(["sample", shipped_run, "--reconstruct", val_only, "-n", "2", "--out", out, "--format", "npy", "-q"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name[:12] for p in out.iterdir()) == ["recon_00050_", "recon_00051_"]  # the first val sets
    result = cli(["eval", shipped_run, val_only, "--split", "test", "-q"])
    assert result.exit_code == 2 and "split 'test' holds no sets; sets are in: train (50), val (10)" in result.stderr


def test_generation_table_names_its_method_and_explains_the_oracle(cli, shipped_run, tiny_mnist):
    result = cli(["eval", shipped_run, tiny_mnist, "--what", "gen", "--metrics", "mmd_cd,jsd", "--max-sets", "4"])
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert (f"Generation, 4 samples vs 4 references, test split of {tiny_mnist} (normalisation: none; distances in "
            "its units); JSD on a 28x28 grid in the ball of radius 0.5 (raw protocol)") in text
    assert "oracle: training sets of the run's dataset scored in place of the samples" in text
    assert "JSD: points outside its grid" in result.stderr  # MNIST digits lie in [0, 1]^2
    gen = json.loads((shipped_run / "eval.json").read_text())["generation"]
    assert gen["model"]["jsd_outside_refs"] > 0.5 and gen["model"]["jsd_resolution"] == 28


@pytest.mark.slow
def test_progress_is_one_named_phase_after_another_each_counting_up_to_its_total(shipped_run, tiny_mnist):
    from pointset_cli.cli._common import load_run
    from pointset_cli.run.evaluate import evaluate_run

    calls = []
    evaluate_run(load_run(shipped_run), tiny_mnist, what="all", max_sets=4, metrics=("mmd_cd", "nna_cd"),
                 progress=lambda phase, done, total: calls.append((phase, done, total)))
    phases = list(dict.fromkeys(phase for phase, _, _ in calls))
    assert phases == ["reconstruction: decoding sets", "reconstruction: CD pairs (retrieval)",
                      "generation: sampling sets", "generation, model: CD pairs", "generation, oracle: CD pairs"]
    for phase in phases:
        counts = [(done, total) for p, done, total in calls if p == phase]
        assert counts[0][0] == 0 and counts[-1][0] == counts[-1][1] and counts == sorted(counts), (phase, counts)
    # A phase starts only when the one before it has finished: the calls come in phase order.
    assert [p for p, _, _ in calls] == sorted((p for p, _, _ in calls), key=phases.index)


def test_sample_reconstruct_refuses_an_unknown_split_in_one_line(cli, shipped_run, tiny_mnist, tmp_path):
    result = cli(["sample", shipped_run, "--reconstruct", tiny_mnist, "--split", "tset", "--out", tmp_path / "r"])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        "error: unknown split 'tset'; choose one of train, val, test"]  # was an internal error
