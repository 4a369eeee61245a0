"""`pointset info`: summary of a good file; one-line error and exit 1 for files breaking the schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

SUBSET = Path(__file__).resolve().parents[2] / "data" / "modelnet10_subset"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    from pointset_cli.data.prepare import PrepareOptions, prepare

    path = tmp_path_factory.mktemp("info") / "good.h5"
    prepare([str(SUBSET)], path, PrepareOptions(max_points=256), argv=["pointset", "prepare", "subset"])
    return path


def test_table(cli, good):
    result = cli(["info", good])
    assert result.exit_code == 0, result.stderr
    for text in ("240 (180 train, 0 val, 60 test)", "chair", "toilet", "sphere", "pointset prepare subset"):
        assert text in result.stdout


def test_json(cli, good):
    result = cli(["info", good, "--format", "json"])
    summary = json.loads(result.stdout)
    assert summary["n_sets"] == 240 and summary["splits"] == {"train": 180, "val": 0, "test": 60}
    assert summary["class_counts"]["train"] == [60, 60, 60] and summary["n_max"] == 256
    assert max(map(abs, summary["range"]["min"] + summary["range"]["max"])) <= 1 + 1e-6


def _set(name, value):
    def edit(f):
        data = f[name][:]
        data[(0,) * data.ndim] = value
        f[name][...] = data
    return edit


def _retype(name, dtype):
    def edit(f):
        data = f[name][:].astype(dtype)
        del f[name]
        f[name] = data
    return edit


def _pad(f):
    f["sizes"][0] = 10  # points past row 10 of set 0 now count as padding, and are not zero


BREAKERS = {
    "missing dataset": (lambda f: f.__delitem__("labels"), "missing dataset 'labels'"),
    "wrong dtype": (_retype("points", np.float64), "dtype float64"),
    "sizes over N_max": (_set("sizes", 10_000), "sizes must lie in"),
    "NaN point": (_set("points", np.nan), "non-finite"),
    "bad split value": (_set("split", 7), "split values"),
    "wrong schema version": (lambda f: f.attrs.__setitem__("schema_version", 2), "schema_version 2"),
    "label out of range": (_set("labels", 3), "labels must lie"),
    "non-zero padding": (_pad, "non-zero padding"),
    "zero scale": (_set("scale", 0.0), "scale > 0"),
    "empty class list": (lambda f: f.attrs.__setitem__("classes", np.array([], dtype=h5py.string_dtype())),
                         "labels must lie in [0, 0)"),
}


@pytest.mark.parametrize("case", list(BREAKERS))
def test_broken_files_are_refused(cli, good, tmp_path, case):
    edit, message = BREAKERS[case]
    broken = tmp_path / "broken.h5"
    shutil.copy(good, broken)
    with h5py.File(broken, "r+") as f:
        edit(f)
    result = cli(["info", broken])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: ") and message in lines[0], result.stderr


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n garbage"])
def test_not_hdf5_and_missing(cli, tmp_path, content):
    path = tmp_path / "x.h5"
    path.write_bytes(content)
    for target in (path, tmp_path / "absent.h5"):
        result = cli(["info", target])
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["sizes over N_max", "bad split value", "label out of range", "zero scale",
                                  "negative size"])
def test_train_and_sample_refuse_what_info_refuses(cli, good, tmp_path, case):
    """The per-set records are checked wherever a dataset is opened, not by `info` alone."""
    edit, message = BREAKERS.get(case) or (_set("sizes", -3), "sizes must lie in")
    broken = tmp_path / "broken.h5"
    shutil.copy(good, broken)
    with h5py.File(broken, "r+") as f:
        edit(f)
    for command in (["train", broken, "--steps", "1", "--run-dir", tmp_path / "run"],
                    ["eval", "--samples", broken, "--refs", good, "--metrics", "mmd_cd"]):
        result = cli(command)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_info_summarises_a_run_folder(cli, shipped_run, tmp_path):
    """`pointset info RUN` said "no such file"; now the run's model, progress, best step and checkpoints."""
    result = cli(["info", shipped_run, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    rows = [json.loads(line) for line in (shipped_run / "metrics.jsonl").read_text().splitlines()]
    best = min((r for r in rows if "val_loss" in r), key=lambda r: r["val_loss"])
    assert summary["model"] == "mlp" and summary["encoder"] == "deepsets" and summary["dim"] == 2
    assert summary["best"] == {"step": best["step"], "val_loss": best["val_loss"]}
    assert summary["steps_done"] == max(r["step"] for r in rows if "loss" in r)
    assert summary["checkpoints"]["best"] == sorted(int(p.name) for p in (shipped_run / "checkpoints" / "best").iterdir()
                                                    if p.name.isdigit())
    table = cli(["info", shipped_run])
    assert table.exit_code == 0 and f"step {best['step']}, validation loss" in table.stdout
    (tmp_path / "empty").mkdir()
    result = cli(["info", tmp_path / "empty"])
    assert result.exit_code == 1 and "not a run folder (no config.yaml)" in result.stderr
