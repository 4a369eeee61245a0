"""`pointset sample` and `pointset eval RUN` on the bundled pretrained run and tiny real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def test_sample_writes_files_and_a_render_and_refuses_overwrite(cli, shipped_run, tmp_path):
    out, png = tmp_path / "s", tmp_path / "grid.png"
    result = cli(["sample", shipped_run, "-n", "4", "--seed", "1", "--out", out, "--format", "xyz", "--render", png])
    assert result.exit_code == 0, result.stderr
    files = sorted(out.glob("*.xyz"))
    assert [f.name for f in files] == [f"sample_{i:04d}.xyz" for i in range(4)]
    pts = np.loadtxt(files[0])
    assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) > 10 and np.isfinite(pts).all()
    assert png.read_bytes()[:4] == b"\x89PNG"
    again = cli(["sample", shipped_run, "-n", "4", "--out", out, "--format", "xyz"])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert cli(["sample", shipped_run, "-n", "4", "--out", out, "--format", "xyz", "--force"]).exit_code == 0


SAMPLE_AND_LIST_MODULES = """
import runpy, sys
sys.argv = ["pointset", "sample", sys.argv[1], "-n", "2", "--out", sys.argv[2], "--format", "npy"]
try:
    runpy.run_module("pointset_cli", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted(m for m in ("numba", "scipy.linalg", "pointset_cli.losses") if m in sys.modules))
"""


def test_sampling_an_mlp_run_imports_neither_numba_nor_scipy_linalg(shipped_run, tmp_path):
    # Decoding needs no kernel and no linear algebra; importing them cost `sample` 0.25 s of its start.
    out = subprocess.run([sys.executable, "-c", SAMPLE_AND_LIST_MODULES, str(shipped_run), str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(list((tmp_path / "s").glob("*.npy"))) == 2
    assert out.stdout.strip().splitlines()[-1] == "['pointset_cli.losses']"  # the losses load, their kernels do not


def test_same_seed_same_sets_and_fixed_size(cli, shipped_run, tmp_path):
    a = cli(["sample", shipped_run, "-n", "3", "--seed", "7", "--out", tmp_path / "a", "--format", "npy"])
    b = cli(["sample", shipped_run, "-n", "3", "--seed", "7", "--out", tmp_path / "b", "--format", "npy"])
    c = cli(["sample", shipped_run, "-n", "3", "--seed", "8", "--out", tmp_path / "c", "--format", "npy",
             "--size", "40"])
    assert a.exit_code == b.exit_code == c.exit_code == 0, c.stderr
    load = lambda d: np.load(d / "sample_0000.npy", allow_pickle=False)  # noqa: E731
    np.testing.assert_array_equal(load(tmp_path / "a"), load(tmp_path / "b"))
    assert all(np.load(f, allow_pickle=False).shape == (40, 2) for f in (tmp_path / "c").glob("*.npy"))


def test_h5_output_is_a_valid_dataset_and_denormalize(cli, shipped_run, tmp_path):
    from pointset_cli.data.schema import SetDataset

    result = cli(["sample", shipped_run, "-n", "5", "--out", tmp_path / "s.h5", "--format", "h5", "--denormalize"])
    assert result.exit_code == 0, result.stderr
    with SetDataset(tmp_path / "s.h5") as ds:
        assert ds.n_sets == 5 and ds.dim == 2
        points, mask, _ = ds.read(ds.indices())
    real = points[mask]
    assert real.min() > -0.5 and real.max() < 1.5  # MNIST digits live in [0, 1]^2


def test_bad_size_and_label(cli, shipped_run, tmp_path):
    bad = cli(["sample", shipped_run, "--size", "100000", "--out", tmp_path / "x"])
    assert bad.exit_code == 2 and "--size" in bad.stderr
    bad = cli(["sample", shipped_run, "--label", "eleven", "--out", tmp_path / "x"])
    assert bad.exit_code == 2 and "unknown label" in bad.stderr


@pytest.mark.slow
def test_an_autoencoder_samples_a_class_from_its_per_class_prior(cli, shipped_run, tiny_sets, tiny_mnist, tmp_path):
    """`sample RUN --label 7 -n 8 --seed S`: eight different 7s, others for another seed; the
    samples of a class are nearer (CD) the real digits of that class than those of another."""
    from pointset_cli import metrics
    from pointset_cli.data.schema import SetDataset

    def draw(label: str, seed: int, *extra):
        out = tmp_path / f"{label}_{seed}.npz"
        result = cli(["sample", shipped_run, "--label", label, "-n", "8", "--seed", str(seed), "--format", "npz",
                      "--out", out, "-q", *extra])
        assert result.exit_code == 0, result.stderr
        with np.load(out) as f:
            return f["points"], f["mask"]

    a, b = draw("7", 0), draw("7", 1, "--render", tmp_path / "sevens.png")  # as README shows it
    assert (tmp_path / "sevens.png").stat().st_size > 0
    assert len({a[0][i][a[1][i]].tobytes() for i in range(8)}) == 8  # eight different sets
    assert not np.array_equal(a[0], b[0])
    with SetDataset(tiny_mnist) as ds:
        labels = ds.labels()
    points, mask = tiny_sets
    for mine, other in (("0", "1"), ("1", "0")):
        s, m = draw(mine, 2)
        d = metrics.pairwise_cd(s, points, m, mask)  # [8, 60]
        assert d[:, labels == int(mine)].mean() < d[:, labels == int(other)].mean(), (mine, d.mean())


@pytest.mark.slow
def test_a_conditional_run_samples_a_distribution_of_each_label(cli, tiny_mnist, tmp_path):
    """`--task conditional`: `sample RUN --label 7 -n 8 --seed S` gives eight different 7s, others for
    another seed, the same for the same seed; with style_dim 0 every sample of a label is one set."""
    from pointset_testing.tinydata import TINY_MODEL

    def draw(run: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
        out = tmp_path / f"{run.name}_{seed}_{len(list(tmp_path.glob('*.npz')))}.npz"
        result = cli(["sample", run, "--label", "7", "-n", "8", "--seed", str(seed), "--format", "npz", "--out", out, "-q"])
        assert result.exit_code == 0, result.stderr
        with np.load(out) as f:
            assert [str(name) for name in f["names"]][:1] == ["sample_0000_7"]
            return f["points"], f["mask"]

    runs = {}
    for style in (None, 0):
        runs[style] = tmp_path / f"conditional_{style}"
        sets = TINY_MODEL if style is None else [s for s in TINY_MODEL if "encoder_options" not in s]  # no encoder
        sets += [] if style is None else [f"model.style_dim={style}"]
        result = cli(["train", tiny_mnist, "--task", "conditional", *(a for s in sets for a in ("--set", s)),
                      "--steps", "20", "--run-dir", runs[style], "-q"])
        assert result.exit_code == 0, result.stderr
    assert (runs[None] / "prior.npz").is_file() and not (runs[0] / "prior.npz").exists()
    a, b, again = draw(runs[None], 0), draw(runs[None], 1), draw(runs[None], 0)
    assert len({a[0][i][a[1][i]].tobytes() for i in range(8)}) == 8  # eight different sets
    assert not np.array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], again[0])
    same, _ = draw(runs[0], 0)
    assert all(np.array_equal(same[i], same[0]) for i in range(8))
    scored = cli(["eval", runs[None], "--what", "gen", "--metrics", "mmd_cd", "--format", "json", "-q"])
    assert scored.exit_code == 0, scored.stderr
    generation = json.loads(scored.stdout)["generation"]
    assert generation["oracle"]["label_nn_cd"] > 0.3  # real digits' nearest test digit: mostly of their class
    assert 0 <= generation["model"]["label_nn_cd"] <= 1


def test_reconstruct_names_sets_by_source(cli, shipped_run, tiny_mnist, tmp_path):
    result = cli(["sample", shipped_run, "--reconstruct", tiny_mnist, "--split", "test", "-n", "3",
                  "--out", tmp_path / "r", "--format", "npy", "--render", tmp_path / "r.png"])
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names[0].startswith("recon_00050_t10k-images-idx3-ubyte_50") and len(names) == 3


def _svg_panels_and_texts(path: Path) -> tuple[int, str]:
    """(panels, every text) of a matplotlib SVG: one <g id="axes_N"> per panel, each text in a comment."""
    svg = path.read_text()
    return svg.count('<g id="axes_'), "\n".join(part.split("-->")[0] for part in svg.split("<!--")[1:])


def test_a_reconstruction_render_shows_inputs_beside_outputs_under_a_title(cli, shipped_run, tiny_mnist, tmp_path):
    """The render drew the outputs alone, untitled, with source names cut to '...es-idx3-ubyte_1'."""
    from pointset_cli.data.schema import SetDataset

    result = cli(["sample", shipped_run, "--reconstruct", tiny_mnist, "--split", "test", "-n", "3",
                  "--render", tmp_path / "r.svg", "-q"])
    assert result.exit_code == 0, result.stderr
    panels, texts = _svg_panels_and_texts(tmp_path / "r.svg")
    assert panels == 6  # input and reconstruction for each of 3 sets
    assert "mnist_mlp, step 70000: reconstructions of 3 test sets of tiny.h5" in texts
    with SetDataset(tiny_mnist) as ds:
        first = ds.indices("test")[0]  # digit 50 of the t10k file
        label = ds.classes[ds.labels()[first]]
    assert f"#{first} · class {label}: input" in texts and "reconstruction, " in texts
    result = cli(["sample", shipped_run, "-n", "2", "--label", "7", "--render", tmp_path / "s.svg", "-q"])
    assert result.exit_code == 0, result.stderr
    panels, texts = _svg_panels_and_texts(tmp_path / "s.svg")
    assert panels == 2 and "mnist_mlp, step 70000: 2 samples of class 7" in texts and "sample 1 · class 7" in texts


def test_not_a_run_folder(cli, tmp_path):
    result = cli(["sample", tmp_path])
    assert result.exit_code == 1 and "not a run folder" in result.stderr


def test_eval_says_what_scoring_costs_before_it_starts(cli, shipped_run, tiny_mnist):
    result = cli(["eval", shipped_run, tiny_mnist, "--split", "test", "--what", "recon", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert "scoring 10 sets of the test split: 110 Chamfer and 10 EMD pairs" in result.stderr
    assert json.loads(result.stdout)["reconstruction"]["retrieval_sets"] == 10


@pytest.mark.slow
def test_eval_run_reports_model_and_oracle_rows(cli, shipped_run, tiny_mnist):
    result = cli(["eval", shipped_run, tiny_mnist, "--split", "test", "--format", "json", "--seed", "0", "-q"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    rec, gen = report["reconstruction"], report["generation"]
    assert rec["n_sets"] == 10 and 0 <= rec["cd"] < 0.05
    assert rec["cardinality_accuracy"] >= 0.98 and rec["retrieval_accuracy"] >= 0.8  # what the shipped run must meet
    assert gen["model"]["n_samples"] == gen["model"]["n_refs"] == 10
    # Training digits must look more like test digits than the model's samples do, or about as much.
    assert gen["oracle"]["mmd_cd"] <= gen["model"]["mmd_cd"] * 1.5
    assert json.loads((shipped_run / "eval.json").read_text())["generation"]["oracle"] == gen["oracle"]


def test_reconstruction_is_scored_at_each_sets_own_size(shipped_run, tiny_mnist):
    """CD compares each set with its reconstruction at the set's true size (the decoder is told it, as
    in training); the size the model picks by itself is scored separately (cd_own_size)."""
    from pointset_cli.cli._common import load_run as load
    from pointset_cli.data.schema import SetDataset
    from pointset_cli.run.evaluate import reconstruction
    from pointset_cli.run.generate import reconstruct_sets

    def brute_cd(x, xm, y, ym):
        out = []
        for a, am, b, bm in zip(x, xm, y, ym, strict=True):
            d = np.sum((a[am][:, None, :] - b[bm][None, :, :]) ** 2, -1)
            out.append(d.min(1).mean() + d.min(0).mean())
        return float(np.mean(out))

    trained = load(shipped_run)
    with SetDataset(tiny_mnist) as ds:
        idx = ds.indices("test")
        rec = reconstruct_sets(trained, ds, idx, seed=0, batch_size=trained.config.data.batch_size)
        scores = reconstruction(trained, ds, idx, seed=0)
    np.testing.assert_array_equal(rec["recon_mask"].sum(1), rec["mask"].sum(1))
    np.testing.assert_array_equal(rec["own_mask"].sum(1), rec["pred_sizes"])
    assert scores["cd"] == pytest.approx(brute_cd(rec["points"], rec["mask"], rec["recon_points"], rec["recon_mask"]), rel=1e-4)
    assert scores["cd_own_size"] == pytest.approx(
        brute_cd(rec["points"], rec["mask"], rec["own_points"], rec["own_mask"]), rel=1e-4)


def test_render_honours_pdf_and_refuses_other_suffixes_before_work(cli, shipped_run, tmp_path):
    result = cli(["sample", shipped_run, "-n", "2", "--render", tmp_path / "s.pdf", "-o", tmp_path / "s", "-q"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    result = cli(["sample", shipped_run, "-n", "2", "--render", tmp_path / "s.gif", "-o", tmp_path / "t", "-q"])
    assert result.exit_code == 2 and "s.gif" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.gif").exists() and not (tmp_path / "t").exists()


def test_npz_or_npy_path_is_one_file_that_eval_reads(cli, shipped_run, tiny_mnist, tmp_path):
    """`--format npz --out recon.npz` made a folder named recon.npz; now one file of all sets."""
    out = tmp_path / "recon.npz"
    result = cli(["sample", shipped_run, "--reconstruct", tiny_mnist, "--split", "test", "-n", "6", "--format", "npz",
                  "-o", out, "-q"])
    assert result.exit_code == 0, result.stderr
    assert out.is_file()
    with np.load(out) as data:  # no pickle needed
        points, mask, sizes, names = data["points"], data["mask"], data["sizes"], data["names"]
    assert points.shape[0] == 6 and mask.shape == points.shape[:2] and (mask.sum(1) == sizes).all()
    assert len(set(sizes.tolist())) > 1 and len(set(names.tolist())) == 6  # digits of different sizes, named
    scored = cli(["eval", "--samples", out, "--refs", tiny_mnist, "--split", "test", "--metrics", "mmd_cd",
                  "--format", "json", "-q"])
    assert scored.exit_code == 0 and json.loads(scored.stdout)["n_samples"] == 6, scored.stderr
    # One .npy has no mask: sets of different sizes are refused, equal ones written as [M, n, D].
    result = cli(["sample", shipped_run, "--reconstruct", tiny_mnist, "--split", "test", "-n", "6", "--format", "npy",
                  "-o", tmp_path / "recon.npy", "-q"])
    assert result.exit_code == 2 and "use npz, which keeps a mask" in result.stderr and not (tmp_path / "recon.npy").exists()
    result = cli(["sample", shipped_run, "-n", "3", "--size", "40", "--format", "npy", "-o", tmp_path / "s.npy", "-q"])
    assert result.exit_code == 0, result.stderr
    assert np.load(tmp_path / "s.npy").shape == (3, 40, 2)
    result = cli(["export", shipped_run, "--what", "samples", "--format", "npz", "-o", tmp_path / "e.npz", "-q"])
    assert result.exit_code == 0 and (tmp_path / "e.npz").is_file(), result.stderr


def test_dash_is_stdout_for_one_stream_and_refused_where_a_file_is_needed(cli, shipped_run, tiny_mnist, tmp_path,
                                                                           monkeypatch):
    """`--out -` made a folder named `-`; `info -`/`prepare -` said "no such file"."""
    import io

    monkeypatch.chdir(tmp_path)
    piped = cli(["sample", shipped_run, "-n", "4", "--format", "npz", "-o", "-", "-q"])
    assert piped.exit_code == 0, piped.stderr
    with np.load(io.BytesIO(piped.stdout_bytes)) as data:
        assert data["points"].shape[0] == 4 and (data["mask"].sum(1) == data["sizes"]).all()
    scored = cli(["eval", "--samples", "-", "--refs", tiny_mnist, "--split", "test", "--metrics", "mmd_cd",
                  "--format", "json", "-q"], input=piped.stdout_bytes)
    assert scored.exit_code == 0 and json.loads(scored.stdout)["n_samples"] == 4, scored.stderr
    one = cli(["sample", shipped_run, "-n", "1", "--format", "xyz", "-o", "-", "-q"])
    assert one.exit_code == 0 and len(one.stdout.splitlines()) > 10 and len(one.stdout.split("\n")[0].split()) == 2
    for args, text in ((["sample", shipped_run, "-n", "3", "--format", "xyz", "-o", "-"], "one set (-n 1)"),
                       (["info", "-"], "cannot be read from stdin"),
                       (["prepare", "-", "-o", "x.h5"], "not stdin"),
                       (["train", "-", "--steps", "1"], "not stdin")):
        result = cli(args)
        assert result.exit_code == 2 and text in result.stderr and len(result.stderr.strip().splitlines()) == 1, args
    assert not (tmp_path / "-").exists() and not (tmp_path / "runs").exists()


def test_json_summary_of_sample_and_export(cli, shipped_run, tmp_path):
    """Scripts had only a list of paths; now one JSON document with the files, sizes and step."""
    result = cli(["sample", shipped_run, "-n", "3", "-o", tmp_path / "s", "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sets"] == 3 and len(summary["sizes"]) == 3 and summary["step"] > 0
    assert [tmp_path / "s" / f"{name}.ply" for name in summary["names"]] == [Path(p) for p in summary["files"]]
    assert all(Path(p).is_file() for p in summary["files"])
    result = cli(["export", shipped_run, "--what", "samples", "-n", "2", "--format", "npz", "-o", tmp_path / "e.npz",
                  "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) | {"sizes": None} == {"run": str(shipped_run), "step": summary["step"],
                                                         "what": "samples", "format": "npz", "sets": 2, "sizes": None,
                                                         "files": [str(tmp_path / "e.npz")]}
    result = cli(["sample", shipped_run, "-n", "2", "--format", "npz", "-o", "-", "--json"])
    assert result.exit_code == 2 and "both write to stdout" in result.stderr


def test_a_checkpoint_the_run_lacks_is_one_line_listing_the_steps_present(cli, shipped_run, tmp_path):
    """sample, eval and export read one checkpoint, --checkpoint best|latest|STEP (the shipped run keeps best/70000)."""
    for command in (["sample", shipped_run, "-n", "1"], ["eval", shipped_run, "--what", "recon"],
                    ["export", shipped_run, "--what", "model", "-o", tmp_path / "p.npz"]):
        for choice, text in (("latest", "the run has no latest checkpoint (checkpoints present: best 70000)"),
                             ("12", "--checkpoint 12: no checkpoint of that step (checkpoints present: best 70000)"),
                             ("last", "--checkpoint must be best, latest or a step number, not 'last'")):
            result = cli([*command, "--checkpoint", choice])
            assert result.exit_code == 2 and text in result.stderr, (command, choice, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1
    result = cli(["export", shipped_run, "--what", "model", "-o", tmp_path / "p.npz", "--checkpoint", "70000",
                  "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["step"] == 70000, result.stderr
    result = cli(["eval", "--samples", tmp_path / "p.npz", "--refs", tmp_path / "p.npz", "--checkpoint", "best"])
    assert result.exit_code == 2 and "--checkpoint picks a checkpoint of RUN" in result.stderr


@pytest.mark.slow
def test_checkpoint_picks_best_latest_or_a_step(cli, tiny_mnist, tmp_path):
    import shutil

    from pointset_cli import config
    from pointset_cli.training.loop import train
    from pointset_testing.tinydata import TINY_MODEL

    run = tmp_path / "run"
    train(config.resolve(None, [*TINY_MODEL, "train.steps=4"], {"data.path": str(tiny_mnist)}), run)
    shutil.rmtree(run / "checkpoints" / "latest" / "4")  # latest/ now holds step 2 alone, best/ step 4

    def exported(*choice):
        out = tmp_path / f"p{'-'.join(choice)}.npz"
        result = cli(["export", run, "--what", "model", "-o", out, "--json", *choice])
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)["step"], dict(np.load(out))

    default, best, latest, two = exported(), exported("--checkpoint", "best"), \
        exported("--checkpoint", "latest"), exported("--checkpoint", "2")
    assert (default[0], best[0], latest[0], two[0]) == (4, 4, 2, 2)  # default: best when the run has one
    assert any((default[1][k] != latest[1][k]).any() for k in default[1])
    assert all((latest[1][k] == two[1][k]).all() for k in latest[1])
    sampled = cli(["sample", run, "-n", "2", "-o", tmp_path / "s", "--checkpoint", "latest", "--json"])
    assert sampled.exit_code == 0 and json.loads(sampled.stdout)["step"] == 2, sampled.stderr
    assert "2 sets from step 2 of" in sampled.stderr
    scored = cli(["eval", run, "--what", "recon", "--checkpoint", "2", "--format", "json", "-q"])
    assert scored.exit_code == 0 and json.loads(scored.stdout)["step"] == 2, scored.stderr
    table = cli(["eval", run, "--what", "recon", "--checkpoint", "best", "-q"])
    assert table.exit_code == 0 and "scored the checkpoint of step 4;" in table.stderr, table.stderr
    missing = cli(["sample", run, "--checkpoint", "3"])
    assert missing.exit_code == 2
    assert "no checkpoint of that step (checkpoints present: best 4; latest 2)" in missing.stderr
