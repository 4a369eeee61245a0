"""`pointset export`: sets as files, parameters as NPZ, and the StableHLO round trip in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def test_export_params_npz_without_pickle(cli, shipped_run, tmp_path):
    out = tmp_path / "p.npz"
    assert cli(["export", shipped_run, "--what", "model", "--format", "npz", "--out", out]).exit_code == 0
    with np.load(out, allow_pickle=False) as f:
        names = list(f.keys())
        assert names and all("/" in n for n in names)
        assert sum(f[n].size for n in names) > 1000
    assert cli(["export", shipped_run, "--what", "model", "--format", "npz", "--out", out]).exit_code == 2


def test_export_sets_as_ascii_ply_and_obj(cli, shipped_run, tmp_path):
    r = cli(["export", shipped_run, "--what", "samples", "-n", "2", "--format", "ply", "--ascii",
             "--out", tmp_path / "p"])
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "p" / "sample_0000.ply").read_text().startswith("ply\nformat ascii")
    r = cli(["export", shipped_run, "--what", "samples", "-n", "2", "--format", "obj", "--out", tmp_path / "o"])
    assert r.exit_code == 0 and (tmp_path / "o" / "sample_0001.obj").read_text().lstrip().startswith(("v ", "#"))
    assert cli(["export", shipped_run, "--what", "weights"]).exit_code == 2


@pytest.mark.slow
def test_stablehlo_runs_with_jax_alone_and_matches(cli, shipped_run, tmp_path):
    import jax

    from pointset_cli.run.load import load_run

    out = tmp_path / "hlo"
    result = cli(["export", shipped_run, "--what", "model", "--format", "stablehlo", "--out", out, "--batch-size", "3"])
    assert result.exit_code == 0, result.stderr
    trained = load_run(shipped_run, print)
    width = json.loads((out / "manifest.json").read_text())["latent_dim"]
    assert width == trained.model.latent_width == trained.config.model.latent_dim + 2 + 1  # + centroid, size
    z = np.random.default_rng(0).normal(size=(3, width)).astype(np.float32)
    z[:, -1] = np.log1p([30, 60, 90])  # the sizes the decoder builds
    key = np.asarray(jax.random.PRNGKey(5))
    points, mask = trained.model.decode(trained.params, key, z, None)
    np.testing.assert_array_equal(np.asarray(mask).sum(axis=1), [30, 60, 90])
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "key.npy", key)
    code = textwrap.dedent(f"""
        import sys, numpy as np, jax
        from jax import export
        exp = export.deserialize(open({str(out / 'decoder.stablehlo')!r}, 'rb').read())
        p, m = exp.call(np.load({str(tmp_path / 'z.npy')!r}), np.load({str(tmp_path / 'key.npy')!r}))
        np.save({str(tmp_path / 'p.npy')!r}, np.asarray(p)); np.save({str(tmp_path / 'm.npy')!r}, np.asarray(m))
        assert not any(name.startswith('pointset') for name in sys.modules)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), np.asarray(points), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), np.asarray(mask))
    assert (out / "encoder.stablehlo").is_file() and (out / "manifest.json").is_file()


@pytest.mark.slow
def test_stablehlo_export_replaces_only_an_earlier_export_as_one_folder(cli, shipped_run, tmp_path):
    out = tmp_path / "hlo"
    args = ["export", shipped_run, "--what", "model", "--format", "stablehlo", "--out", out, "--batch-size", "2"]
    assert cli(args).exit_code == 0
    first = {p.name: p.stat().st_ino for p in out.iterdir()}
    assert set(first) == {"decoder.stablehlo", "encoder.stablehlo", "manifest.json"}
    again = cli(args)
    assert again.exit_code == 2 and "exists" in again.stderr  # no --force
    assert cli([*args, "--force"]).exit_code == 0
    assert {p.name for p in out.iterdir()} == set(first)
    assert all(p.stat().st_ino != first[p.name] for p in out.iterdir())  # a whole new folder, swapped in
    assert [p.name for p in tmp_path.iterdir()] == ["hlo"]  # no temporaries left beside it
    (out / "notes.txt").write_text("mine")
    refused = cli([*args, "--force"])
    assert refused.exit_code == 2 and "holds more than an earlier output" in refused.stderr
    assert (out / "notes.txt").read_text() == "mine"
