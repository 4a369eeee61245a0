"""Set-to-set runs (complete, denoise, upsample): the inputs of dataset sets, the task's scores
beside two baselines that learn nothing, and `sample --from`: what any run that encodes sets
makes of sets from files or a dataset.

The input of the dataset set with index i is made with models.degrade.index_keys (a key folded
from INPUT_SEED and i), whatever the run or its seed: every run is scored, and validated while it
trains, on the same partial views, noisy copies or subsets. Shapes: M sets, N padded points, N_in
padded input points, S output slots, D dimension.

Scores, against each whole set (the target), in the dataset's normalised units: CD, EMD and the
F-score at tau times the target's bounding-box diagonal (precision, recall), for three rows:
"model" (its outputs at the size it decides), "input" (the input itself) and "nearest" (the
training shape nearest the input by one-sided Chamfer from the input, among at most NEAREST_SETS
seeded training sets). EMD needs equal sizes: where an output's size is not its target's, the
output is resampled to it (its points in a seeded order, cycled or cut) and `emd_resized` counts
those sets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.data.batching import Batch
from pointset_cli.errors import UsageError
from pointset_cli.models.degrade import INPUT_SEED, index_keys
from pointset_cli.run.generate import (SetCollection, chunk_bounds, heading, model_outputs, pad_rows, reconstructed,
                                       set_caption, set_stem)
from pointset_cli.run.load import training_data

Progress = Callable[[int, int], None]  # (done, total)
NEAREST_SETS = 1000  # candidates of the nearest-training-shape baseline: a seeded subset of the training split
ROWS = ("model", "input", "nearest")
ROW_TITLES = {"model": "model", "input": "input itself", "nearest": "nearest training shape"}
SCORES = ("cd", "emd", "fscore", "precision", "recall")


def check_task(run: Any) -> str:
    """The run's set-to-set task; UsageError when it has none."""
    if run.model.inputs is None:
        raise UsageError(f"this run's task is {run.config.model.task}; --from and task scores need a run trained "
                         "with --task complete, denoise or upsample")
    return run.config.model.task


def make_inputs(run: Any, points: np.ndarray, mask: np.ndarray, index: np.ndarray, chunk: int = 256
                ) -> tuple[np.ndarray, np.ndarray]:
    """The inputs [M, N_in, D] and mask [M, N_in] of whole sets [M, N, D] whose dataset indices are
    `index` [M] (the same input for a set whatever else is in the batch)."""
    import jax

    check_task(run)
    keys_of = jax.jit(index_keys)
    make = jax.jit(run.model.inputs)
    out = []
    for start, stop in chunk_bounds(len(points), chunk):
        rows = pad_rows(np.arange(start, stop), chunk)  # one shape, one compilation
        batch = Batch(points[rows], mask[rows], np.zeros(chunk, np.int32))
        made = make(keys_of(np.asarray(index)[rows].astype(np.uint32)), batch)
        out.append((np.asarray(made.points)[: stop - start], np.asarray(made.mask)[: stop - start]))
    return np.concatenate([p for p, _ in out]), np.concatenate([m for _, m in out])


def resized(points: np.ndarray, mask: np.ndarray, sizes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sets [M, N, D] resampled to `sizes` [M] points each: their real points in a seeded random
    order, cycled (fewer) or cut (more); a set of the right size is only reordered."""
    rng = np.random.default_rng(seed)
    width = int(max(sizes.max(initial=1), 1))
    out_p = np.zeros((len(points), width, points.shape[-1]), np.float32)
    out_m = np.arange(width)[None, :] < sizes[:, None]
    for i in range(len(points)):
        real = rng.permutation(np.flatnonzero(mask[i]))
        if len(real):
            out_p[i, : sizes[i]] = points[i, np.resize(real, sizes[i])]
    return out_p, out_m


def row_scores(out: np.ndarray, out_mask: np.ndarray, target: np.ndarray, target_mask: np.ndarray,
               tau: float, seed: int, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Per set [M]: cd, emd (outputs resampled to the target's size where it differs; by the solver
    all-pairs EMD uses, within metrics.emd_error_bound of the optimum), fscore, precision, recall;
    and `resized` [M] bool, where the EMD resampled. progress(done, total) counts EMD pairs."""
    from pointset_cli import metrics

    sizes = target_mask.sum(1)
    wrong = out_mask.sum(1) != sizes
    even_p, even_m = resized(out, out_mask, sizes, seed)
    scores = {"cd": metrics.paired_chamfer(out, target, out_mask, target_mask),
              "emd": metrics.paired_emd(even_p, target, even_m, target_mask, solver=metrics.resolve_emd_solver("auto"),
                                        progress=progress)}
    scores.update(metrics.paired_fscore(out, target, out_mask, target_mask, tau=tau))
    return {**scores, "resized": wrong}


def _summary(scores: dict[str, np.ndarray], labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Means over all sets and per class of each score."""
    row = {k: float(scores[k].mean()) for k in SCORES}
    row["emd_resized"] = int(scores["resized"].sum())
    row["per_class"] = {classes[c]: {k: float(scores[k][labels == c].mean()) for k in SCORES}
                        for c in np.unique(labels)}
    return row


def _nearest_training(run: Any, ds: Any, inputs: np.ndarray, in_mask: np.ndarray, seed: int,
                      progress: Progress | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The training shape nearest each input (one-sided Chamfer from the input, among at most
    NEAREST_SETS seeded training sets of the run's own dataset, else of `ds`) -> (points, mask, candidates)."""
    from pointset_cli import metrics

    with training_data(run, ds) as source:
        train = source.indices("train")
        if len(train) == 0:
            raise UsageError("no training sets for the nearest-training-shape baseline: neither the run's "
                             "dataset nor this one has a train split", run.dataset_path)
        pick = np.sort(train[metrics.subsample(len(train), NEAREST_SETS, seed)])
        cand, cand_mask, _ = source.read(pick)
    best = metrics.nearest_shapes(inputs, cand, in_mask, cand_mask, seed=seed, progress=progress)
    return cand[best].astype(np.float32), cand_mask[best].astype(bool), len(pick)


def task_scores(run: Any, ds: Any, idx: np.ndarray, seed: int = 0, tau: float | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Scores of a set-to-set run on the dataset sets `idx`: {"task", "n_sets", "fscore_tau", "rows":
    {model, input, nearest: {cd, emd, fscore, precision, recall, emd_resized, per_class}},
    "nearest_candidates", "cardinality_accuracy", "notes"}."""
    from pointset_cli import metrics

    task = check_task(run)
    tau = metrics.FSCORE_TAU if tau is None else tau
    if not tau > 0:
        raise UsageError(f"--fscore-tau must be positive, got {tau}")

    def phase(name: str) -> Progress | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    target, target_mask, labels = ds.read(idx)
    target, target_mask = target.astype(np.float32), target_mask.astype(bool)
    inputs, in_mask = make_inputs(run, target, target_mask, idx)
    out, out_mask = model_outputs(run, inputs, in_mask, seed, run.config.data.batch_size, phase(f"{task}: model outputs"))
    near, near_mask, candidates = _nearest_training(run, ds, inputs, in_mask, seed,
                                                    phase("nearest training shape: one-sided CD pairs"))
    rows = {}
    for name, (p, m) in (("model", (out, out_mask)), ("input", (inputs, in_mask)), ("nearest", (near, near_mask))):
        scores = row_scores(p, m, target, target_mask, tau, seed, phase(f"{ROW_TITLES[name]}: EMD pairs"))
        rows[name] = _summary(scores, labels, list(ds.classes))
    return {"task": task, "task_options": dict(run.config.model.task_options), "n_sets": len(idx),
            "fscore_tau": tau, "rows": rows, "nearest_candidates": candidates,
            "cardinality_accuracy": metrics.cardinality_accuracy(out_mask.sum(1), target_mask.sum(1)),
            "emd_solver": metrics.resolve_emd_solver("auto"),
            "emd_error_bound": metrics.emd_error_bound("auto", target, out, inputs, near),
            "input_seed": INPUT_SEED}


def from_path(run: Any, path: Path, split: str | None, n: int | None, seed: int,
              denormalize: bool = False) -> SetCollection:
    """What the run makes of the sets at `path` (the first `n`, all when None).

    A dataset .h5: its `split` (None: SetDataset.scored_split); a set-to-set run gets each set's
    input (as `eval` makes it) and shows the set as the target; an autoencoder reconstructs the sets.
    A point file, a folder of them or an .npy/.npz array: the sets are the inputs, as they are, in
    the run's normalised units (as `sample` writes them without --denormalize); outputs keep their names.
    """
    from pointset_cli.data.collections import is_dataset, read_named_sets
    from pointset_cli.data.schema import SetDataset

    if run.model.inputs is None and is_dataset(path):
        return reconstructed(run, path, split, n, seed, denormalize)
    what = "outputs" if run.model.inputs is None else f"{run.config.model.task}d sets"
    if not is_dataset(path):
        if split is not None:
            raise UsageError("--split applies to a dataset .h5", path)
        if denormalize:
            raise UsageError("--denormalize needs a dataset's normalisation record; files are taken in "
                             "normalised units and written in them", path)
        points, mask, names = read_named_sets(path)
        points, mask, names = points[:n], mask[:n], names[:n]
        if points.shape[-1] != run.info["dim"]:
            raise UsageError(f"the run was trained on {run.info['dim']}D sets but these are {points.shape[-1]}D", path)
        out, out_mask = model_outputs(run, points, mask, seed, run.config.data.batch_size)
        return SetCollection(out, out_mask, np.zeros(len(out), np.int32), names, run.info["classes"], True,
                             heading(run, f"{what} of {len(out)} sets from {Path(path).name}"), names, (points, mask))
    with SetDataset(path) as ds:
        split = ds.scored_split(split)
        idx = ds.indices(split)[:n]
        if len(idx) == 0:
            raise UsageError(f"split {split!r} holds no sets; sets are in: {ds.held_splits()}", path)
        target, target_mask, labels = ds.read(idx)
        target, target_mask = target.astype(np.float32), target_mask.astype(bool)
        inputs, in_mask = make_inputs(run, target, target_mask, idx)
        out, out_mask = model_outputs(run, inputs, in_mask, seed, run.config.data.batch_size)
        if denormalize:
            out, inputs, target = (ds.denormalize(p, idx) for p in (out, inputs, target))
        sources = ds.names(idx)
        names = [f"{run.config.model.task}_{i:05d}_{set_stem(s)}" for i, s in zip(idx, sources, strict=True)]
        captions = [set_caption(s) + (f" \u00b7 class {ds.classes[c]}" if len(ds.classes) > 1 else "")
                    for s, c in zip(sources, labels, strict=True)]
        title = heading(run, f"{what} of {len(idx)} {split} sets of {Path(path).name}")
        return SetCollection(out, out_mask, labels.astype(np.int32), names, list(ds.classes), not denormalize,
                             title, captions, (inputs, in_mask), (target, target_mask))
