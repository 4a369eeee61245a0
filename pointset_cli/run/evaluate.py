"""Scoring a trained run on a dataset split: reconstruction and generation (PointFlow protocol).

Reconstruction (autoencoders): Chamfer and EMD between each set and its reconstruction at the
set's own size (the decoder is told it, as in training), and, beside them, the Chamfer at the
size the model decides by itself (`cd_own_size`) and how often that size is right, and the
retrieval accuracy: how often a reconstruction is nearer (CD) its own input than any other input of
the split (at most RETRIEVAL_SETS of them; a model that ignores its input scores about 1 / sets).
Generation: as many generated sets as reference sets in the split (conditional models get the
references' labels), MMD / COV / 1-NNA (CD and EMD) and JSD; beside them the "oracle" row:
the same metrics for training sets (of the run's own dataset) used as if they were the samples. Everything is computed
in the dataset's normalised units. EMD needs equal sizes: with variable-size sets the EMD
columns are left out (and `notes` says so). JSD's grid covers the ball of radius 0.5 (see
pointset_cli.metrics); `notes` says when more than OUTSIDE_WARN of the points lie outside it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.errors import UsageError
from pointset_cli.metrics import GENERATION_METRICS, METRIC_UNITS, PhaseProgress, Progress, subsample
from pointset_cli.run.load import training_data

WHAT = ("recon", "gen", "nll", "all")
RETRIEVAL_SETS = 1000  # the retrieval accuracy compares each of at most this many reconstructions with as many inputs
OUTSIDE_WARN = 0.05  # a larger share of points outside the JSD grid's ball makes the JSD mostly its edge cells


def _phase(progress: PhaseProgress | None, name: str) -> Progress | None:
    """A (done, total) callback reporting to `progress` as the phase `name`."""
    return None if progress is None else (lambda done, total: progress(name, done, total))


def outside_grid_notes(rows: dict[str, dict[str, Any]]) -> list[str]:
    """One note when more than OUTSIDE_WARN of the references' points, or of a row's samples (rows:
    {"model": generation_metrics result, ...}), lie outside the JSD grid's ball; else none."""
    some = next(iter(rows.values()))
    if "jsd_outside_refs" not in some:
        return []
    shares = {"references": some["jsd_outside_refs"], **{name: row["jsd_outside_samples"] for name, row in rows.items()}}
    over = [f"{name} {share:.0%}" for name, share in shares.items() if share > OUTSIDE_WARN]
    if not over:
        return []
    fix = "; --protocol pointflow fits the references into it" if some["jsd_protocol"] == "raw" else ""
    return [f"JSD: points outside its grid (the ball of radius 0.5 around the origin; they count in its edge "
            f"cells): {', '.join(over)}{fix}"]


def _read_split(ds: Any, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from pointset_cli.data.batching import fixed_batches

    parts = [(b.points[:n], b.mask[:n], b.labels[:n]) for b, n in fixed_batches(ds, idx, 256)]
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def reconstruction(run: Any, ds: Any, idx: np.ndarray, seed: int,
                   progress: PhaseProgress | None = None) -> dict[str, Any]:
    from pointset_cli import metrics
    from pointset_cli.run.generate import reconstruct_sets

    rec = reconstruct_sets(run, ds, idx, seed=seed, batch_size=run.config.data.batch_size,
                           progress=_phase(progress, "reconstruction: decoding sets"))
    out = metrics.reconstruction_metrics(rec["points"], rec["recon_points"], rec["mask"], rec["recon_mask"])
    out["cd_own_size"] = float(metrics.paired_chamfer(rec["points"], rec["own_points"], rec["mask"], rec["own_mask"]).mean())
    out["cardinality_accuracy"] = metrics.cardinality_accuracy(rec["pred_sizes"], rec["mask"].sum(1))
    # Does each reconstruction (at its own size) follow its input? CD to every input scored, on at
    # most RETRIEVAL_SETS of them (seeded): the pairs grow with the square of the sets.
    pick = metrics.subsample(len(idx), RETRIEVAL_SETS, seed)
    d_ri = metrics.pairwise_cd(rec["own_points"][pick], rec["points"][pick], rec["own_mask"][pick],
                               rec["mask"][pick], progress=_phase(progress, "reconstruction: CD pairs (retrieval)"))
    out["retrieval_accuracy"] = metrics.retrieval_accuracy(d_ri)
    out["retrieval_sets"] = len(pick)
    out["n_sets"] = len(idx)
    return out


def plan_line(n: int, split: str, recon: bool, gen: bool, names: tuple[str, ...], equal_sizes: bool,
              whole: bool, emd_search: str = "bounds") -> str:
    """What scoring n sets costs, in distance pairs, and (for a whole split) how to score fewer.
    With emd_search "bounds" the generation rows' EMD pairs are an upper bound."""
    from pointset_cli.metrics import distance_pairs

    cd = emd = 0
    if recon:
        cd += n + min(n, RETRIEVAL_SETS) ** 2  # paired CDs, then the retrieval matrix
        emd += n
    bounded = False
    if gen:  # the model's samples and the oracle row, each against the n references
        pairs = distance_pairs(names if equal_sizes else tuple(m for m in names if not m.endswith("_emd")), n, n)
        cd, emd = cd + 2 * pairs["cd"], emd + 2 * pairs["emd"]
        bounded = emd_search == "bounds" and pairs["emd"] > 0
    line = f"scoring {n:,} sets of the {split} split: {cd:,} Chamfer and {'at most ' if bounded else ''}{emd:,} EMD pairs"
    return line + ("; --max-sets N scores a seeded subset" if whole and n > 100 else "")


def _gen_metric_names(wanted: tuple[str, ...], *masks: np.ndarray) -> tuple[tuple[str, ...], list[str]]:
    sizes = np.unique(np.concatenate([m.sum(1) for m in masks]))
    if len(sizes) > 1 and any(m.endswith("_emd") for m in wanted):
        names = tuple(m for m in wanted if not m.endswith("_emd"))
        return names, [f"EMD metrics left out: set sizes vary ({sizes.min()}..{sizes.max()} points)"]
    return wanted, []


def _oracle_sets(run: Any, ds: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random training sets of the run's own dataset (what the model learnt from), else of `ds`."""
    with training_data(run, ds) as source:
        train_idx = source.indices("train")
        if len(train_idx) == 0:
            raise UsageError("no training sets for the oracle row: neither the run's dataset nor this one has a "
                             "train split", run.dataset_path)
        rng = np.random.default_rng(seed)
        oracle_idx = np.sort(rng.choice(train_idx, min(len(train_idx), n), replace=False))
        return _read_split(source, oracle_idx)


def generation(run: Any, ds: Any, ref_idx: np.ndarray, seed: int, progress: PhaseProgress | None = None,
               metrics_wanted: tuple[str, ...] | None = None, jsd_protocol: str = "raw",
               emd_search: str = "bounds") -> dict[str, Any]:
    from pointset_cli import metrics
    from pointset_cli.run.generate import sample_sets

    refs, ref_mask, ref_labels = _read_split(ds, ref_idx)
    conditional = run.config.model.task == "conditional"
    samples, sample_mask, sample_labels = sample_sets(run, len(ref_idx), seed=seed,
                                                      labels=ref_labels if conditional else None,
                                                      progress=_phase(progress, "generation: sampling sets"))
    oracle, oracle_mask, oracle_labels = _oracle_sets(run, ds, len(ref_idx), seed)
    names, notes = _gen_metric_names(tuple(metrics_wanted or metrics.GENERATION_METRICS), ref_mask, sample_mask,
                                     oracle_mask)
    rows = {}
    for row, (s, m, labels) in (("model", (samples, sample_mask, sample_labels)),
                                ("oracle", (oracle, oracle_mask, oracle_labels))):
        phases = None if progress is None else functools.partial(_row_phase, progress, row)
        # conditional: is each set nearest a reference of its label (asked for, or the oracle's own)?
        rows[row] = metrics.generation_metrics(s, refs, sample_mask=m, ref_mask=ref_mask, metrics=names,
                                               seed=seed, jsd_protocol=jsd_protocol, emd_search=emd_search,
                                               progress=phases, labels=(labels, ref_labels) if conditional else None)
    return {**rows, "notes": notes + outside_grid_notes(rows)}


def _row_phase(progress: PhaseProgress, row: str, phase: str, done: int, total: int) -> None:
    progress(f"generation, {row}: {phase}", done, total)


def evaluate_run(
    run: Any,
    data_path: Path | None = None,
    split: str | None = None,
    what: str = "all",
    seed: int = 0,
    max_sets: int | None = None,
    progress: PhaseProgress | None = None,
    metrics: tuple[str, ...] | None = None,
    notify: Callable[[str], None] | None = None,
    jsd_protocol: str = "raw",
    emd_search: str = "bounds",
    fscore_tau: float | None = None,
) -> dict[str, Any]:
    """Score a TrainedRun on `split` of `data_path` (default: the run's own dataset; split None:
    test when it holds sets, else val).

    `max_sets` scores a random subset (drawn with `seed`) of the split instead of all of it;
    `metrics` chooses the generation metrics (default: all of metrics.GENERATION_METRICS);
    `notify` gets one line saying how many distance pairs the scoring computes, before it starts;
    `progress` gets (phase, done, total), one named phase after another ("reconstruction: decoding
    sets", "generation, model: CD pairs", ...); `jsd_protocol`, `emd_search`: see metrics.generation_metrics.
    A set-to-set run (complete, denoise, upsample) is scored on its task instead ("task": see
    run.set_to_set.task_scores; `fscore_tau` its F-score threshold), under what "recon" or "all".

    Returns {"run", "dataset", "split", "step", "seed", "normalization", "n_sets", "units" (of each
    raw value, in the dataset's normalised coordinates), "reconstruction"?, "generation"?,
    "likelihood"?}; under what="all" reconstruction is skipped for runs without an encoder-decoder
    (conditional, density and GAN models) and the likelihood is computed for models with a density.
    """
    from pointset_cli.data.schema import SetDataset

    if what not in WHAT:
        raise UsageError(f"--what must be one of {', '.join(WHAT)}")
    path = Path(data_path) if data_path else run.dataset_path
    autoencoder = run.config.model.task == "autoencode" and run.model.sample is None
    set_to_set = run.model.inputs is not None
    if set_to_set and what in ("gen", "nll"):
        raise UsageError(f"a {run.config.model.task} run makes sets from inputs: it has no generation or "
                         "likelihood to score (--what recon or all scores its task)")
    if what == "recon" and not autoencoder:
        raise UsageError(f"reconstruction needs an autoencoder; model {run.config.model.name!r} "
                         f"with task {run.config.model.task} has none")
    has_density = run.model.log_prob is not None
    if what == "nll" and not has_density:
        raise UsageError(f"model {run.config.model.name!r} defines no density; --model-nll needs poisson or setflow")
    with SetDataset(path) as ds:
        if ds.dim != run.info["dim"]:
            raise UsageError(f"the run was trained on {run.info['dim']}D sets but this dataset is {ds.dim}D", path)
        split = ds.scored_split(split)
        idx = ds.indices(split)
        if len(idx) == 0:
            raise UsageError(f"split {split!r} holds no sets; sets are in: {ds.held_splits()}", path)
        idx = idx[subsample(len(idx), max_sets, seed)]
        out: dict[str, Any] = {"run": str(run.paths.root), "dataset": str(path), "split": split, "step": run.step,
                               "seed": seed, "normalization": ds.normalization, "n_sets": len(idx),
                               "units": dict(METRIC_UNITS)}
        if set_to_set:
            from pointset_cli.run.set_to_set import task_scores

            if notify is not None:
                notify(f"scoring the {run.config.model.task} task on {len(idx):,} sets of the {split} split")
            out["task"] = task_scores(run, ds, idx, seed, fscore_tau, progress)
            return out
        if notify is not None:
            recon = what in ("recon", "all") and autoencoder
            equal = len(np.unique(ds.sizes()[idx])) == 1
            notify(plan_line(len(idx), split, recon, what in ("gen", "all"), tuple(metrics or GENERATION_METRICS),
                             equal, max_sets is None, emd_search))
        if what in ("recon", "all") and autoencoder:
            out["reconstruction"] = reconstruction(run, ds, idx, seed, progress)
        if what in ("gen", "all"):
            out["generation"] = generation(run, ds, idx, seed, progress, metrics, jsd_protocol, emd_search)
        if what in ("nll", "all") and has_density:
            from pointset_cli.run.likelihood import index_batches, model_nll

            batches = index_batches(ds, idx, run.config.data.batch_size)
            out["likelihood"] = {**model_nll(run.model, run.params, batches), "split": split}
    return out
