"""The trained model out of a run: parameters as NPZ, the model as StableHLO.

Parameters: one NPZ of flat arrays named `module/param` (no pickle). Model: `jax.export` artifacts
of the decoder (and encoder) with the parameters baked in, runnable with JAX alone (the manifest
says how to load them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.data.batching import Batch
from pointset_cli.models.setmodel import batch_shapes
from pointset_cli.errors import PointsetError
from pointset_cli.fsutil import atomic_folder, atomic_path, check_replaceable_folder


def flat_params(params: Any) -> dict[str, np.ndarray]:
    """Haiku params {module: {name: array}} -> {"module/name": array}."""
    return {f"{module}/{name}": np.asarray(v) for module, leaves in params.items() for name, v in leaves.items()}


def write_params_npz(params: Any, path: Path, force: bool = False) -> Path:
    with atomic_path(path, force) as tmp, open(tmp, "wb") as f:
        np.savez(f, **flat_params(params))
    return path


def write_stablehlo(run: Any, out: Path, batch_size: int = 16, force: bool = False) -> list[Path]:
    """`out/decoder.stablehlo` (z [B, K], key uint32 [2] -> points [B, S, D], mask [B, S]),
    `out/encoder.stablehlo` for autoencoders (points [B, N, D], mask [B, N] -> z [B, K]; for a
    set-to-set run N is its input slots, pad or mask to them) and `out/manifest.json` with the
    shapes; parameters are constants inside the artifacts.
    """
    import jax
    import jax.numpy as jnp
    from jax import export as jax_export

    check_replaceable_folder(out, force, _is_stablehlo_export)  # before the seconds of tracing
    info, params, model = run.info, run.params, run.model
    k = run.model.latent_width or run.config.model.latent_dim
    n_max, dim = info["n_max"], info["dim"]

    def decode(z: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        return model.decode(params, key, z, None)

    def encode(points: jax.Array, mask: jax.Array) -> jax.Array:
        return model.encode(params, Batch(points, mask, jnp.zeros(points.shape[0], jnp.int32)))

    artifacts = {"decoder": jax_export.export(jax.jit(decode))(
        jax.ShapeDtypeStruct((batch_size, k), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.uint32))}
    if run.config.model.task == "autoencode" or model.inputs is not None:
        n_in = n_max if model.inputs is None else jax.eval_shape(  # the slots of the inputs the run makes
            model.inputs, jax.random.split(jax.random.PRNGKey(0), batch_size),
            batch_shapes(model.data, batch_size)).mask.shape[1]
        artifacts["encoder"] = jax_export.export(jax.jit(encode))(
            jax.ShapeDtypeStruct((batch_size, n_in, dim), jnp.float32),
            jax.ShapeDtypeStruct((batch_size, n_in), jnp.bool_))
    manifest = {"batch_size": batch_size, "latent_dim": k, "n_max": n_max, "dim": dim, "step": run.step,
                # the whole output is the input's points, then the decoder's (models/assemble.py)
                "keep_input": bool(run.config.model.task_options.get("keep_input")),
                "artifacts": {name: {"inputs": [str(a) for a in exp.in_avals], "outputs": [str(a) for a in exp.out_avals]}
                              for name, exp in artifacts.items()},
                "load": "jax.export.deserialize(open(path, 'rb').read()).call(*inputs)"}
    try:
        blobs = {name: exp.serialize() for name, exp in artifacts.items()}
    except ImportError as err:  # jax serialises through the optional flatbuffers package
        raise PointsetError(f"StableHLO export needs an extra package: {err}", out) from None
    with atomic_folder(out, force, _is_stablehlo_export) as tmp:  # the artifacts and manifest swap in together
        for name, blob in blobs.items():
            (tmp / f"{name}.stablehlo").write_bytes(blob)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return [out / f"{name}.stablehlo" for name in blobs] + [out / "manifest.json"]


def _is_stablehlo_export(folder: Path) -> bool:
    """Whether `folder` holds an earlier StableHLO export and nothing else."""
    names = [p.name for p in folder.iterdir()]
    return "manifest.json" in names and all(n == "manifest.json" or n.endswith(".stablehlo") for n in names)
