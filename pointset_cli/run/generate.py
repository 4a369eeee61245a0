"""Sets out of a trained run: samples from the latent prior (or the model's own sampler),
reconstructions of dataset sets, the training embeddings and the prior fitted on them.

Shapes: n sets, S output slots, N input points (padded), D point dimension, K latent size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.data.batching import Batch, fixed_batches
from pointset_cli.errors import InputError, UsageError
from pointset_cli.run.prior import fit_prior_by_class, load_prior, save_prior

Progress = Callable[[int, int], None]  # (sets done, sets in all)


def _no_progress(done: int, total: int) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class SetCollection:
    points: np.ndarray  # [B, S, D]
    mask: np.ndarray  # [B, S] bool
    labels: np.ndarray  # [B] int32
    names: list[str]  # one file stem per set, saying where it came from
    classes: list[str]
    normalized: bool  # False after --denormalize (source units)
    # For pictures: the heading (run, step, what the sets are), a short caption per set (where it
    # came from, its class where known), for reconstructions and set-to-set outputs the sets they
    # were made from (points [B, N, D], mask [B, N]), and the whole sets a set-to-set run should give
    # back, where known: drawn beside them.
    title: str = ""
    captions: list[str] | None = None
    inputs: tuple[np.ndarray, np.ndarray] | None = None
    targets: tuple[np.ndarray, np.ndarray] | None = None


def samples_latents(model: Any) -> bool:
    """Whether a run samples by decoding latents of its l-GMM prior: autoencoders, and conditional
    decoders with a style code (not whole models, which sample by themselves)."""
    cfg = model.config  # resolved
    return model.sample is None and (cfg.task == "autoencode" or (cfg.task == "conditional" and cfg.style_dim > 0))


def generated(run: Any, n: int, seed: int, label: str | None = None, size: int | None = None,
              temperature: float = 1.0, denormalize: bool = False) -> SetCollection:
    """n sets sampled from a TrainedRun (conditional runs: of class `label`, else random classes)."""
    if n < 1:
        raise UsageError("-n must be at least 1")
    labels = None if label is None else np.full(n, run.label_index(label), np.int32)
    if run.model.inputs is not None:
        raise UsageError(f"a {run.config.model.task} run makes sets from inputs: give them with --from PATH")
    if label is not None and run.config.model.task != "conditional" and run.model.sample is not None:
        raise UsageError(f"--label needs a conditional run or an autoencoder; model {run.config.model.name!r} "
                         "samples without labels")
    points, mask, labels = sample_sets(run, n, seed=seed, labels=labels, size=size, temperature=temperature)
    if denormalize:
        points = run.denormalize_generated(points)
    names = [f"sample_{i:04d}" for i in range(n)]
    captions = [f"sample {i}" for i in range(n)]
    if run.config.model.task == "conditional" or label is not None:  # else the labels drawn mean nothing
        names = [f"{name}_{run.info['classes'][c]}" for name, c in zip(names, labels, strict=True)]
        captions = [f"{text} \u00b7 class {run.info['classes'][c]}" for text, c in zip(captions, labels, strict=True)]
    what = f"{n} samples" + (f" of class {run.info['classes'][labels[0]]}" if label is not None else "")
    what += (f", temperature {temperature:g}" if temperature != 1 else "") + (f", {size} points each" if size else "")
    return SetCollection(points, mask, labels, names, run.info["classes"], not denormalize,
                         heading(run, what), captions)


def reconstructed(run: Any, data_path: Path | None, split: str | None, n: int | None, seed: int,
                  denormalize: bool = False) -> SetCollection:
    """Reconstructions of the first `n` sets (all when None) of `split` (None: SetDataset.scored_split),
    named after their sources."""
    from pointset_cli.data.schema import SetDataset

    path = Path(data_path) if data_path else run.dataset_path
    with SetDataset(path) as ds:
        split = ds.scored_split(split)
        idx = ds.indices(split)
        if n is not None:
            idx = idx[:n]
        if len(idx) == 0:
            raise UsageError(f"split {split!r} holds no sets; sets are in: {ds.held_splits()}", path)
        rec = reconstruct_sets(run, ds, idx, seed=seed, batch_size=run.config.data.batch_size)
        points = ds.denormalize(rec["recon_points"], idx) if denormalize else rec["recon_points"]
        inputs = ds.denormalize(rec["points"], idx) if denormalize else rec["points"]
        names = [f"recon_{i:05d}_{set_stem(s)}" for i, s in zip(idx, ds.names(idx), strict=True)]
        labels = ds.labels(None)[idx]
        captions = [set_caption(s) + (f" \u00b7 class {ds.classes[c]}" if len(ds.classes) > 1 else "")
                    for s, c in zip(ds.names(idx), labels, strict=True)]
        title = heading(run, f"reconstructions of {len(idx)} {split} sets of {path.name}")
        return SetCollection(points, rec["recon_mask"], labels, names, list(ds.classes), not denormalize,
                             title, captions, (inputs, rec["mask"]))


def heading(run: Any, what: str) -> str:
    """A picture's title: which run, which step, what the sets are."""
    return f"{run.paths.root.resolve().name}, step {run.step}: {what}"


def set_caption(source: str) -> str:
    """A short caption of a dataset set name: the set's index within its file when the file holds
    many ("t10k-images-idx3-ubyte.gz#27" -> "#27"), else the file's stem ("chair/chair_0001.off" -> "chair_0001")."""
    return f"#{source.split('#')[1]}" if "#" in source else Path(source).stem


def set_stem(source: str) -> str:
    """A file-name-safe stem of a dataset set name ("chair/train/chair_0001.pcd" -> "chair_0001")."""
    stem = Path(source.split("#")[0]).stem + (f"_{source.split('#')[1]}" if "#" in source else "")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "set"


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """`a` with its first axis padded to `rows` by repeating rows (one shape, one compilation)."""
    return a if len(a) == rows else np.resize(a, (rows, *a.shape[1:]))


def sample_sets(
    run: Any,
    n: int,
    seed: int = 0,
    labels: np.ndarray | None = None,
    size: int | None = None,
    temperature: float = 1.0,
    chunk: int = 64,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n new sets from a TrainedRun -> (points [n, S, D] f32, mask [n, S] bool, labels [n] int32).

    Autoencoders decode latents of the run's l-GMM prior (`temperature` scales its spread; with
    `labels`, of the mixture fitted on each class's embeddings); conditional decoders decode
    `labels` (uniform random classes when None) with latents of each class's mixture, or their
    embedding alone (style_dim 0); point-process models use their own sampler. `size` fixes every
    set's size, else the model's cardinality decides.
    `progress` gets (sets done, n) after each chunk.
    """
    import jax
    import jax.numpy as jnp

    model, params, info = run.model, run.params, run.info
    if size is not None and not 1 <= size <= info["n_max"]:
        raise UsageError(f"--size must be between 1 and {info['n_max']} (the largest training set)")
    rng = np.random.default_rng(seed)
    by_class = labels is not None
    if labels is None:
        labels = rng.integers(0, info["n_classes"], n)
    labels = np.asarray(labels, np.int32)
    key = jax.random.PRNGKey(seed)
    chunk = min(chunk, n)
    report = progress or _no_progress
    report(0, n)
    if model.sample is not None:
        outs = []
        for i, (a, b) in enumerate(chunk_bounds(n, chunk)):
            p, m = model.sample(params, jax.random.fold_in(key, i), b - a, jnp.asarray(labels[a:b]))
            outs.append((np.asarray(p), np.asarray(m)))  # read back: the count follows finished work
            report(b, n)
    else:
        conditional = run.config.model.task == "conditional"
        if samples_latents(model):
            z = _prior_latents(run, n, rng, temperature, labels if by_class or conditional else None)
            if run.config.model.size_from == "latent":
                z = snap_size_codes(z, info["sizes"])
        else:  # the label's embedding alone
            empty = Batch(np.zeros((n, info["n_max"], info["dim"]), np.float32), np.zeros((n, info["n_max"]), bool), labels)
            z = np.asarray(model.encode(params, empty))
        decode = jax.jit(model.decode)
        sizes = None if size is None else np.full(chunk, size, np.int32)
        outs = []
        for i, (a, b) in enumerate(chunk_bounds(n, chunk)):
            p, m = decode(params, jax.random.fold_in(key, i), pad_rows(z[a:b], chunk), sizes)
            outs.append((np.asarray(p)[: b - a], np.asarray(m)[: b - a]))
            report(b, n)
    points = np.concatenate([np.asarray(p) for p, _ in outs]).astype(np.float32)
    mask = np.concatenate([np.asarray(m) for _, m in outs]).astype(bool)
    return points, mask, labels


def snap_size_codes(z: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Latents z [n, K'] whose last coordinate, a sampled size code log(1 + n), is moved to the code
    of the nearest set size the training data has (`sizes`: its histogram over 0..n_max). The
    prior's Gaussians spread even a size that never varies: every ModelNet shape has 1,024 points,
    and the codes drawn for them decoded to 990-1,024."""
    seen = np.flatnonzero(np.asarray(sizes))
    if not len(seen):
        return z
    wanted = np.expm1(z[:, -1].astype(np.float64))
    right = np.minimum(np.searchsorted(seen, wanted), len(seen) - 1)  # the first seen size >= wanted, or the last
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(seen[left] - wanted) <= np.abs(seen[right] - wanted), seen[left], seen[right])
    out = z.copy()
    out[:, -1] = np.log1p(nearest)
    return out


def _prior_latents(run: Any, n: int, rng: np.random.Generator, temperature: float,
                   labels: np.ndarray | None) -> np.ndarray:
    """n latents [n, K'] from the run's prior: overall, or for each of `labels` [n] from its class's part."""
    if not run.paths.prior.is_file():
        raise InputError("no latent prior (prior.npz): was training finished?", run.paths.root)
    prior = load_prior(run.paths.prior)
    if labels is None:
        return prior.overall.sample(n, rng, temperature)
    z = np.empty((n, prior.overall.means.shape[1]), np.float32)
    for label in np.unique(labels):  # class by class: `labels` of one class draw as one sample() call
        mixture = prior.of_class(int(label))
        if mixture is None:
            raise UsageError(f"the run's latent prior has no part for class {run.info['classes'][int(label)]!r} "
                             "(fitted before per-class priors existed, or too few training sets of it)")
        rows = labels == label
        z[rows] = mixture.sample(int(rows.sum()), rng, temperature)
    return z


def model_outputs(run: Any, points: np.ndarray, mask: np.ndarray, seed: int = 0, batch_size: int = 64,
                  progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What a run that encodes sets (an autoencoder or a set-to-set run) makes of the sets [M, N, D]
    with mask [M, N]: its outputs [M, S, D] and mask [M, S], at the sizes it decides."""
    import jax

    if run.config.model.task == "conditional" or run.model.sample is not None:
        raise UsageError(f"model {run.config.model.name!r} with task {run.config.model.task} does not encode sets")
    reconstruct = jax.jit(run.model.reconstruct)
    key = jax.random.PRNGKey(seed)
    out = []
    report = progress or _no_progress
    for i, (a, b) in enumerate(chunk_bounds(len(points), batch_size)):
        rows = pad_rows(np.arange(a, b), batch_size)
        p, m = reconstruct(run.params, jax.random.fold_in(key, i),
                           Batch(points[rows].astype(np.float32), mask[rows], np.zeros(batch_size, np.int32)))
        out.append((np.asarray(p)[: b - a], np.asarray(m)[: b - a]))
        report(b, len(points))
    return np.concatenate([p for p, _ in out]), np.concatenate([m for _, m in out])


def reconstruct_sets(run: Any, ds: Any, idx: np.ndarray, seed: int = 0, batch_size: int = 64,
                     progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Reconstructions of dataset sets `idx` (autoencoders).

    Returns inputs (points [b, N, D], mask), reconstructions at the input sizes (recon_points
    [b, S, D], recon_mask: the decoder is given each set's true size, as in training), and the
    reconstructions at the sizes the model decides on its own (own_points [b, S, D], own_mask;
    pred_sizes [b] = own_mask.sum(1)). A fixed-size decoder (mlp) decides all its S slots.
    `progress` gets (sets done, b) after each batch.
    """
    import jax

    if run.config.model.task != "autoencode":
        raise UsageError(f"reconstruction needs an autoencoder; this run's task is {run.config.model.task}")
    model, params = run.model, run.params
    encode, decode = jax.jit(model.encode), jax.jit(model.decode)
    key = jax.random.PRNGKey(seed)
    names = ("points", "mask", "recon_points", "recon_mask", "own_points", "own_mask", "pred_sizes")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    report = progress or _no_progress
    report(0, len(idx))
    for i, (nb, n_real) in enumerate(fixed_batches(ds, idx, batch_size)):
        batch, k = nb, jax.random.fold_in(key, i)
        z = encode(params, batch)
        rp, rm = decode(params, k, z, batch.mask.sum(-1))
        op, om = decode(params, k, z, None)
        for name, value in zip(names, (nb.points, nb.mask, rp, rm, op, om, np.asarray(om).sum(-1))):
            parts[name].append(np.asarray(value)[:n_real])
        report(min((i + 1) * batch_size, len(idx)), len(idx))
    return {k: np.concatenate(v) for k, v in parts.items()}


def encode_sets(model: Any, params: Any, ds: Any, idx: np.ndarray, batch_size: int) -> np.ndarray:
    """Latents z [len(idx), K] of sets `idx`, in order."""
    import jax

    encode = jax.jit(model.encode)
    out = [np.asarray(encode(params, b))[:n] for b, n in fixed_batches(ds, idx, batch_size)]
    return np.concatenate(out)


def fit_prior(model: Any, params: Any, ds: Any, idx: np.ndarray, batch_size: int, components: int, seed: int,
              path: Path) -> Path:
    """Fit the l-GMM on the embeddings of training sets `idx`, and one per class, and save them to
    `path` (prior.npz)."""
    z = encode_sets(model, params, ds, idx, batch_size)
    save_prior(fit_prior_by_class(z, ds.labels()[idx], components, seed), path)
    return path
