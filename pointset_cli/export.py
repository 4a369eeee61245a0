"""Getting things out of a run: sets as files, parameters as NPZ, the model as StableHLO.

Sets: one file per set (PLY binary or ascii, OBJ point list, XYZ, NPY, NPZ), named after where the
set came from, or one HDF5 file in the dataset schema. Parameters: one NPZ of flat arrays named
`module/param` (no pickle). Model: `jax.export` artifacts of the decoder (and encoder) with the
parameters baked in, runnable with JAX alone (see `load_stablehlo` for the two-line recipe).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.errors import PointsetError, UsageError
from pointset_cli.fsutil import atomic_path, check_writable

SET_FORMATS = ("ply", "obj", "xyz", "npy", "npz", "h5")


@dataclasses.dataclass(frozen=True)
class SetCollection:
    points: np.ndarray  # [B, S, D]
    mask: np.ndarray  # [B, S] bool
    labels: np.ndarray  # [B] int32
    names: list[str]  # one file stem per set, saying where it came from
    classes: list[str]
    normalized: bool  # False after --denormalize (source units)


def generated(run: Any, n: int, seed: int, label: str | None = None, size: int | None = None,
              temperature: float = 1.0, denormalize: bool = False) -> SetCollection:
    """n sets sampled from a TrainedRun (conditional runs: of class `label`, else random classes)."""
    from pointset_cli.generate import sample_sets

    if n < 1:
        raise UsageError("-n must be at least 1")
    labels = None if label is None else np.full(n, run.label_index(label), np.int32)
    if label is not None and run.config.model.task != "conditional" and run.model.sample is None:
        raise UsageError("--label needs a conditional run (trained with --task conditional)")
    points, mask, labels = sample_sets(run, n, seed=seed, labels=labels, size=size, temperature=temperature)
    if denormalize:
        points = run.denormalize_generated(points)
    names = [f"sample_{i:04d}" for i in range(n)]
    if run.config.model.task == "conditional":
        names = [f"{name}_{run.info['classes'][c]}" for name, c in zip(names, labels, strict=True)]
    return SetCollection(points, mask, labels, names, run.info["classes"], not denormalize)


def reconstructed(run: Any, data_path: Path | None, split: str, n: int | None, seed: int,
                  denormalize: bool = False) -> SetCollection:
    """Reconstructions of the first `n` sets (all when None) of `split`, named after their sources."""
    from pointset_cli.data.schema import SetDataset
    from pointset_cli.generate import reconstruct_sets

    path = Path(data_path) if data_path else run.dataset_path
    with SetDataset(path) as ds:
        idx = ds.indices(split)
        if n is not None:
            idx = idx[:n]
        if len(idx) == 0:
            raise UsageError(f"split {split!r} is empty", path)
        rec = reconstruct_sets(run, ds, idx, seed=seed, batch_size=run.config.data.batch_size)
        points = ds.denormalize(rec["recon_points"], idx) if denormalize else rec["recon_points"]
        names = [f"recon_{i:05d}_{_stem(s)}" for i, s in zip(idx, ds.names(idx), strict=True)]
        return SetCollection(points, rec["recon_mask"], ds.labels(None)[idx], names, list(ds.classes), not denormalize)


def _stem(source: str) -> str:
    """A file-name-safe stem of a dataset set name ("chair/train/chair_0001.pcd" -> "chair_0001")."""
    stem = Path(source.split("#")[0]).stem + (f"_{source.split('#')[1]}" if "#" in source else "")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "set"


def write_sets(sets: SetCollection, out: Path, fmt: str, binary: bool = True, force: bool = False) -> list[Path]:
    """One file per set in folder `out` (or one dataset file for fmt "h5"); returns the paths.

    Every target is checked before anything is written, so a refusal leaves nothing half-done.
    """
    from pointset_cli.io import write_points

    if fmt not in SET_FORMATS:
        raise UsageError(f"unknown format {fmt!r} (use {', '.join(SET_FORMATS)})")
    if fmt == "h5":
        path = out if out.suffix in (".h5", ".hdf5") else out / "sets.h5"
        _make_folder(path.parent)
        _write_h5(sets, path, force)
        return [path]
    _make_folder(out)
    paths = [out / f"{name}.{fmt}" for name in sets.names]
    for p in paths:
        check_writable(p, force)
    for p, pts, m in zip(paths, sets.points, sets.mask, strict=True):
        write_points(p, pts[m].astype(np.float32), fmt, binary=binary, force=force)
    return paths


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PointsetError(f"cannot create folder: {err.strerror or err}", path) from None


def _write_h5(sets: SetCollection, path: Path, force: bool) -> None:
    from pointset_cli import __version__
    from pointset_cli.data.schema import write_dataset

    n, dim = len(sets.names), sets.points.shape[-1]
    write_dataset(
        path, [p[m] for p, m in zip(sets.points, sets.mask, strict=True)], sets.labels, sets.names,
        np.zeros(n, np.uint8), sets.classes, np.zeros((n, dim)), np.ones(n),
        {"normalization": "none", "sampler": "points", "seed": 0, "n_points": 0,
         "max_points": int(sets.mask.sum(1).max()),
         "provenance": {"tool": f"pointset {__version__}", "normalized_units": sets.normalized}},
        force=force,
    )


def flat_params(params: Any) -> dict[str, np.ndarray]:
    """Haiku params {module: {name: array}} -> {"module/name": array}."""
    return {f"{module}/{name}": np.asarray(v) for module, leaves in params.items() for name, v in leaves.items()}


def write_params_npz(params: Any, path: Path, force: bool = False) -> Path:
    with atomic_path(path, force) as tmp, open(tmp, "wb") as f:
        np.savez(f, **flat_params(params))
    return path


def write_stablehlo(run: Any, out: Path, batch_size: int = 16, force: bool = False) -> list[Path]:
    """`out/decoder.stablehlo` (z [B, K], key uint32 [2] -> points [B, S, D], mask [B, S]),
    `out/encoder.stablehlo` for autoencoders (points [B, N, D], mask [B, N] -> z [B, K]) and
    `out/manifest.json` with the shapes; parameters are constants inside the artifacts.
    """
    import jax
    import jax.numpy as jnp
    from jax import export as jax_export

    from pointset_cli.models import Batch

    info, params, model = run.info, run.params, run.model
    k = run.config.model.latent_dim
    n_max, dim = info["n_max"], info["dim"]

    def decode(z: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        return model.decode(params, key, z, None)

    def encode(points: jax.Array, mask: jax.Array) -> jax.Array:
        return model.encode(params, Batch(points, mask, jnp.zeros(points.shape[0], jnp.int32)))

    artifacts = {"decoder": jax_export.export(jax.jit(decode))(
        jax.ShapeDtypeStruct((batch_size, k), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.uint32))}
    if run.config.model.task == "autoencode":
        artifacts["encoder"] = jax_export.export(jax.jit(encode))(
            jax.ShapeDtypeStruct((batch_size, n_max, dim), jnp.float32),
            jax.ShapeDtypeStruct((batch_size, n_max), jnp.bool_))
    _make_folder(out)
    paths = [out / f"{name}.stablehlo" for name in artifacts] + [out / "manifest.json"]
    for p in paths:
        check_writable(p, force)
    manifest = {"batch_size": batch_size, "latent_dim": k, "n_max": n_max, "dim": dim, "step": run.step,
                "artifacts": {name: {"inputs": [str(a) for a in exp.in_avals], "outputs": [str(a) for a in exp.out_avals]}
                              for name, exp in artifacts.items()},
                "load": "jax.export.deserialize(open(path, 'rb').read()).call(*inputs)"}
    try:
        blobs = {name: exp.serialize() for name, exp in artifacts.items()}
    except ImportError as err:  # jax serialises through the optional flatbuffers package
        raise PointsetError(f"StableHLO export needs an extra package: {err}", out) from None
    for name, blob in blobs.items():
        with atomic_path(out / f"{name}.stablehlo", force) as tmp:
            tmp.write_bytes(blob)
    with atomic_path(out / "manifest.json", force) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return paths
