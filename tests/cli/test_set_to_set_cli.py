"""`pointset train --task complete|denoise|upsample`, `sample RUN --from PATH` and `eval RUN` on a
set-to-set run, through the command line on tiny real digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pointset_testing.runner import SETS


@pytest.fixture(scope="module")
def complete_run(tiny_mnist, tmp_path_factory) -> Path:
    """A tiny completion run (cut views, 6 steps) on the tiny digits."""
    from typer.testing import CliRunner

    from pointset_cli.cli import app

    run = tmp_path_factory.mktemp("s2s") / "complete"
    result = CliRunner().invoke(app, ["train", str(tiny_mnist), "--task", "complete", "--steps", "6", *SETS,
                                      "--set", "model.task_options.view=cut", "--run-dir", str(run), "-q"])
    assert result.exit_code == 0, result.stderr
    return run


def test_train_records_every_task_option(complete_run):
    from pointset_cli import config

    cfg = config.load(complete_run / "config.yaml")
    assert cfg.model.task == "complete"
    assert cfg.model.task_options == {"view": "cut", "keep_min": 0.4, "keep_max": 0.8, "grid": 16, "input_points": 0,
                                      "keep_input": False}


def test_eval_scores_the_model_beside_both_baselines(cli, complete_run, tiny_mnist):
    result = cli(["eval", complete_run, "--format", "json", "-q"])
    assert result.exit_code == 0, result.stderr
    task = json.loads(result.stdout)["task"]
    assert task["task"] == "complete" and task["n_sets"] == 10 and task["fscore_tau"] == 0.01
    assert set(task["rows"]) == {"model", "input", "nearest"}
    for row in task["rows"].values():
        assert row["cd"] > 0 and row["emd"] > 0 and 0 <= row["fscore"] <= 1
        assert set(row["per_class"]) <= {str(d) for d in range(10)}
    # A partial view lies on its shape: most of its points are within tau of it, few of the shape's within
    # tau of the view; a training shape is a different digit: lower precision than the view.
    assert task["rows"]["input"]["precision"] == pytest.approx(1.0)
    assert task["rows"]["input"]["recall"] < 0.9
    assert task["rows"]["nearest"]["precision"] < task["rows"]["input"]["precision"]
    assert 0 < task["nearest_candidates"] <= 40
    again = cli(["eval", complete_run, "--format", "json", "-q", "--fscore-tau", "0.05"])
    loose = json.loads(again.stdout)["task"]
    assert loose["rows"]["model"]["fscore"] >= task["rows"]["model"]["fscore"]
    assert loose["rows"]["input"]["cd"] == task["rows"]["input"]["cd"]  # the same inputs, whatever else changes
    table = cli(["eval", complete_run, "-q"])
    assert table.exit_code == 0, table.stderr
    for text in ("Complete, 10 sets", "input itself", "nearest training shape", "F-score (%)"):
        assert text in table.stdout


def test_sample_from_a_dataset_split_draws_input_output_and_target(cli, complete_run, tiny_mnist, tmp_path):
    out, png = tmp_path / "out", tmp_path / "completion.png"
    result = cli(["sample", complete_run, "--from", tiny_mnist, "--split", "test", "-n", "3", "--out", out,
                  "--format", "npy", "--render", png, "--json"])
    assert result.exit_code == 0, result.stderr
    names = json.loads(result.stdout)["names"]
    assert names == [f"complete_{i:05d}_t10k-images-idx3-ubyte_{i}" for i in (50, 51, 52)]
    assert sorted(p.stem for p in out.glob("*.npy")) == names
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sample_from_files_keeps_their_names(cli, complete_run, tiny_sets, tmp_path):
    from pointset_cli.io import write_points

    points, mask = tiny_sets
    scans = tmp_path / "scans"
    scans.mkdir()
    for name, i in (("left", 0), ("right", 1)):
        write_points(scans / f"{name}.xyz", points[i][mask[i]][: mask[i].sum() // 2])
    out = tmp_path / "done"
    result = cli(["sample", complete_run, "--from", scans, "--out", out, "--format", "xyz", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["names"] == ["left", "right"]
    done = np.loadtxt(out / "left.xyz")
    assert done.shape[1] == 2 and len(done) > 0 and np.isfinite(done).all()
    one = cli(["sample", complete_run, "--from", scans / "right.xyz", "--out", tmp_path / "one", "--format", "npy"])
    assert one.exit_code == 0 and (tmp_path / "one" / "right.npy").is_file(), one.stderr


def test_set_to_set_refusals_are_one_line(cli, complete_run, tiny_mnist, tmp_path):
    cases = [  # (arguments, exit code: 2 usage, 1 a bad input; text of the one line)
        (["sample", complete_run, "-n", "2", "--out", tmp_path / "x"], 2, "give them with --from PATH"),
        (["eval", complete_run, "--what", "gen"], 2, "no generation or likelihood"),
        (["sample", complete_run, "--from", tmp_path / "missing.ply"], 1, "missing.ply: no such file"),
        (["train", tiny_mnist, "--task", "complete", "--model", "poisson", "--print-config"], 2, "is a whole model"),
        (["train", tiny_mnist, "--task", "complete", "--set", "model.task_options.view=side", "--print-config"],
         2, "view"),
        (["train", tiny_mnist, "--set", "model.task_options.ratio=2", "--print-config"], 2, "task_options apply to"),
        (["train", tiny_mnist, "--task", "upsample", "--set", "model.task_options.view=cut", "--print-config"],
         2, "task_options.view"),
    ]
    for args, code, text in cases:
        result = cli(args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert text in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


@pytest.mark.parametrize("task", ["denoise", "upsample"])
def test_the_other_tasks_train_and_score(cli, tiny_mnist, tmp_path, task):
    run = tmp_path / task
    result = cli(["train", tiny_mnist, "--task", task, "--steps", "2", *SETS, "--run-dir", run, "-q"])
    assert result.exit_code == 0, result.stderr
    scored = cli(["eval", run, "--format", "json", "-q"])
    assert scored.exit_code == 0, scored.stderr
    rows = json.loads(scored.stdout)["task"]["rows"]
    if task == "upsample":  # a quarter of the points, all on the shape
        assert rows["input"]["precision"] == pytest.approx(1.0) and rows["input"]["recall"] < 1.0
    else:  # jitter and outliers move points off the shape
        assert rows["input"]["precision"] < 1.0
    exported = cli(["export", run, "--what", "model", "--format", "stablehlo", "--out", tmp_path / "hlo",
                    "--batch-size", "2"])
    assert exported.exit_code == 0, exported.stderr
    encoder = json.loads((tmp_path / "hlo" / "manifest.json").read_text())["artifacts"]["encoder"]
    n_max = json.loads((run / "data.json").read_text())["n_max"]
    n_in = -(-n_max // 4) if task == "upsample" else n_max + -(-n_max // 10)  # a quarter; outlier slots added
    assert encoder["inputs"] == [f"float32[2,{n_in},2]", f"bool[2,{n_in}]"]


def test_keep_input_outputs_hold_the_input(cli, tiny_mnist, tiny_sets, tmp_path):
    """upsample with keep_input: the output holds the input's points, so it reaches every target point
    the input reaches (recall at least the input's) and, with TSPN deciding how many it adds, the
    sizes; the export says the input joins the decoder's points."""
    run = tmp_path / "keep"
    result = cli(["train", tiny_mnist, "--task", "upsample", "--steps", "2", *SETS, "--run-dir", run, "-q",
                  "--set", "model.task_options.keep_input=true"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(cli(["eval", run, "--format", "json", "-q"]).stdout)["task"]["rows"]
    assert rows["model"]["recall"] >= rows["input"]["recall"] > 0
    import pointset_cli as ps

    points, mask = tiny_sets
    sparse = [points[i][mask[i]][::4] for i in range(2)]
    for given, done in zip(sparse, ps.load_run(run).outputs(sparse)):
        gaps = np.linalg.norm(given[:, None] - done[None], axis=-1).min(axis=1)
        assert len(done) > len(given) and gaps.max() < 1e-4  # each given point is in the output
    exported = cli(["export", run, "--what", "model", "--format", "stablehlo", "--out", tmp_path / "hlo",
                    "--batch-size", "2"])
    assert exported.exit_code == 0, exported.stderr
    assert json.loads((tmp_path / "hlo" / "manifest.json").read_text())["keep_input"] is True
    refused = cli(["train", tiny_mnist, "--task", "complete", "--model", "dspn", "--steps", "1", *SETS,
                   "--run-dir", tmp_path / "dspn", "-q", "--set", "model.task_options.keep_input=true"])
    assert refused.exit_code == 2 and "keep_input does not apply to decoder 'dspn'" in refused.stderr
    assert "Traceback" not in refused.stderr
    denoise = cli(["train", tiny_mnist, "--task", "denoise", "--set", "model.task_options.keep_input=true",
                   "--print-config"])
    assert denoise.exit_code == 2 and "task_options.keep_input" in denoise.stderr


def test_the_python_api_maps_sets_to_sets(complete_run, tiny_sets):
    import pointset_cli as ps

    run = ps.load_run(complete_run)
    points, mask = tiny_sets
    halves = [points[i][mask[i]][: mask[i].sum() // 2] for i in range(3)]
    done = run.outputs(halves)
    assert len(done) == 3 and all(d.ndim == 2 and d.shape[1] == 2 and len(d) > 0 for d in done)
    assert not np.allclose(done[0][: len(done[1])], done[1][: len(done[0])])  # each follows its own input
