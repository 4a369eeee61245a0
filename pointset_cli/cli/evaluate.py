"""`pointset eval RUN` (a trained run on a dataset split) and `pointset eval --samples PATH --refs PATH`
(any generated sets against references): the tables of the literature's metrics, or JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from pointset_cli.cli._help import Command, examples
from pointset_cli.cli._common import (
    CheckpointOption,
    FormatOption,
    OutputFormat,
    QuietOption,
    err_console,
    handle_errors,
    hint,
    load_run,
    make_progress,
    out_console,
    print_json,
)
from pointset_cli.errors import UsageError

METRIC_NAMES = ("mmd_cd", "mmd_emd", "cov_cd", "cov_emd", "nna_cd", "nna_emd", "jsd")  # = metrics.GENERATION_METRICS
# Literature units: (column title, factor applied to the raw value).
UNITS = {
    "mmd_cd": ("MMD-CD (x10^3)", 1e3),
    "mmd_emd": ("MMD-EMD (x10^2)", 1e2),
    "cov_cd": ("COV-CD (%)", 100.0),
    "cov_emd": ("COV-EMD (%)", 100.0),
    "nna_cd": ("1-NNA-CD (%)", 100.0),
    "nna_emd": ("1-NNA-EMD (%)", 100.0),
    "jsd": ("JSD (x10^2)", 1e2),
    "label_nn_cd": ("nearest ref. of its label (%)", 100.0),  # conditional runs
}


RECON_UNITS = {
    "cd": ("CD (x10^3)", 1e3),
    "emd": ("EMD (x10^2)", 1e2),
    "cd_own_size": ("CD at own size (x10^3)", 1e3),
    "cardinality_accuracy": ("size acc. (%)", 100.0),
    "retrieval_accuracy": ("nearest its own input (%)", 100.0),
}
TASK_UNITS = {
    "cd": RECON_UNITS["cd"],
    "emd": RECON_UNITS["emd"],
    "fscore": ("F-score (%)", 100.0),
    "precision": ("precision (%)", 100.0),
    "recall": ("recall (%)", 100.0),
}


# The table's factor per JSON key (eval's JSON records it as table_scale).
TABLE_SCALE = {name: factor for name, (_, factor) in {**UNITS, **RECON_UNITS, **TASK_UNITS}.items()}
ORACLE_NOTE = ("oracle: training sets of the run's dataset scored in place of the samples, "
               "what a model that reproduced its training data would get")
EVAL_HELP = "\n\n".join((
    "Score generated sets against reference sets (MMD, COV, 1-NNA, JSD).",
    "With RUN: reconstructions, generation beside the oracle row (training sets scored in place of the "
    "samples) and a density model's NLL, on the test split of its dataset, or the val split when test "
    "holds no sets.",
    "CD is a squared distance and EMD a distance, in the sets' own (normalised) units; the table shows "
    "MMD-CD x10^3, MMD-EMD and JSD x10^2, COV and 1-NNA in %. 1-NNA breaks a tie between equally near "
    "sets toward the lower index, samples before references.",
    "JSD is PointFlow's: the occupancy of a 28^D grid over the cube [-0.5, 0.5]^D kept inside the ball "
    "of radius 0.5 (2D sets: a 28 x 28 disc). Points outside count in its edge cells (the JSON's "
    "jsd_outside_* say how many; a note warns above 5%); --protocol pointflow fits the references into "
    "that ball first.",
    "A set-to-set run (complete, denoise, upsample) is scored on its task: CD, EMD and the F-score at "
    "--fscore-tau times each target's bounding-box diagonal, of its outputs, of the inputs themselves and "
    "of the training shape nearest each input.",
))


def register(app: typer.Typer) -> None:
    @app.command("eval", cls=Command, epilog=examples(
        "pointset eval runs/tspn --max-sets 200",
        "pointset eval runs/complete --fscore-tau 0.02",
        "pointset eval --samples samples.npy --refs mn10.h5 --split test",
    ), help=EVAL_HELP)
    @handle_errors
    def evaluate(
        run: Optional[Path] = typer.Argument(None, help="A run folder to score (or use --samples/--refs)."),
        data: Optional[Path] = typer.Argument(None, help="With RUN: the dataset (default: the run's own)."),
        what: str = typer.Option("all", "--what", help="With RUN: recon, gen, nll or all."),
        model_nll: bool = typer.Option(False, "--model-nll", help="With RUN: only the likelihood (NLL per set, bits per point) of a density model."),
        samples: Optional[Path] = typer.Option(None, "--samples", help="Generated sets: dataset .h5, .npy/.npz [M, N, D] or folder of point files."),
        refs: Optional[Path] = typer.Option(None, "--refs", help="Reference sets, same forms as --samples."),
        metrics: str = typer.Option(",".join(METRIC_NAMES), "--metrics", help="Comma-separated subset of: " + ", ".join(METRIC_NAMES)),
        split: Optional[str] = typer.Option(None, "--split", help="Split to score (train, val, test): with RUN, of its dataset (default test, or val when test holds no sets); else of each HDF5 input among --samples/--refs (others are read whole)."),
        samples_split: Optional[str] = typer.Option(None, "--samples-split", help="Split of an HDF5 --samples (overrides --split)."),
        refs_split: Optional[str] = typer.Option(None, "--refs-split", help="Split of an HDF5 --refs (overrides --split)."),
        max_sets: Optional[int] = typer.Option(None, "--max-sets", min=1, help="Subsample each collection to this many sets (seeded)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the subsampling."),
        emd_solver: str = typer.Option("auto", "--emd-solver", help="EMD assignment solver: auto (= auction-numba when numba is installed, error bound reported), auction-numba, scipy (exact), optax (exact), auction."),
        emd_search: str = typer.Option("bounds", "--emd-search", help="How each set's EMD-nearest set is found: bounds (solve only the pairs that cheap lower bounds of the EMD cannot rule out; the same results, the JSON's emd_pairs_solved says how many) or all (every pair)."),
        protocol: str = typer.Option("raw", "--protocol", help="JSD frame: raw (the sets as they are) or pointflow (samples and references moved by one shift and scale that fits the references into the grid's ball of radius 0.5). Other metrics are unchanged."),
        fscore_tau: Optional[float] = typer.Option(None, "--fscore-tau", help="Set-to-set runs: the F-score's distance threshold, as a fraction of each target's bounding-box diagonal (default 0.01)."),
        checkpoint: Optional[str] = CheckpointOption,
        fmt: OutputFormat = FormatOption,
        quiet: bool = QuietOption,
    ) -> None:
        from pointset_cli.data.schema import SPLITS
        from pointset_cli.metrics import EMD_SEARCHES, JSD_PROTOCOLS

        chosen = _parse_metrics(metrics)
        if protocol not in JSD_PROTOCOLS:
            raise UsageError(f"unknown --protocol {protocol!r}; valid: {', '.join(JSD_PROTOCOLS)}")
        if emd_search not in EMD_SEARCHES:
            raise UsageError(f"unknown --emd-search {emd_search!r}; valid: {', '.join(EMD_SEARCHES)}")
        for flag, value in (("--split", split), ("--samples-split", samples_split), ("--refs-split", refs_split)):
            if value is not None and value not in SPLITS:
                raise UsageError(f"{flag}: unknown split {value!r}; choose one of {', '.join(SPLITS)}")
        if run is not None:
            return _eval_run(run, data, split, "nll" if model_nll else what, seed, max_sets, fmt, quiet,
                            chosen, checkpoint, protocol, emd_search, fscore_tau)
        if fscore_tau is not None:
            raise UsageError("--fscore-tau scores a set-to-set RUN; --samples/--refs have no targets")
        if checkpoint is not None:
            raise UsageError("--checkpoint picks a checkpoint of RUN; --samples/--refs have none")
        if samples is None or refs is None:
            raise UsageError("give both --samples PATH and --refs PATH")
        from pointset_cli.data.collections import is_dataset

        splits = tuple(own or (split if is_dataset(path) else None)
                       for own, path in ((samples_split, samples), (refs_split, refs)))
        result = _score(samples, refs, chosen, splits, max_sets, seed, emd_solver, protocol, emd_search, quiet)
        if fmt == OutputFormat.json:
            print_json(result)
        else:
            _print_table(result, chosen)
        for note in result["notes"]:
            hint(note, quiet)


def _parse_metrics(text: str) -> tuple[str, ...]:
    chosen = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in chosen if m not in METRIC_NAMES]
    if unknown or not chosen:
        raise UsageError(f"unknown metric {unknown[0] if unknown else '(none)'!r} in --metrics; valid: {', '.join(METRIC_NAMES)}")
    return chosen


def _score(samples, refs, chosen, splits, max_sets, seed, emd_solver, protocol, emd_search, quiet) -> dict:
    from pointset_cli import metrics as metrics_lib
    from pointset_cli.data.collections import read_sets
    from pointset_cli.errors import InputError
    from pointset_cli.distances.assignment import SOLVERS
    from pointset_cli.run.evaluate import outside_grid_notes

    if emd_solver not in SOLVERS:
        raise UsageError(f"unknown --emd-solver {emd_solver!r}; valid: {', '.join(SOLVERS)}")
    s_points, s_mask = read_sets(samples, splits[0])
    r_points, r_mask = read_sets(refs, splits[1])
    if s_points.shape[-1] != r_points.shape[-1]:
        raise InputError(f"samples are {s_points.shape[-1]}D but references are {r_points.shape[-1]}D", samples)
    sizes = set(s_mask.sum(1).tolist()) | set(r_mask.sum(1).tolist())
    if any(m.endswith("_emd") for m in chosen) and len(sizes) > 1:
        raise InputError(
            f"EMD needs every set to have the same number of points (found {min(sizes)}..{max(sizes)}); "
            "choose --metrics without *_emd",
            samples,
        )
    with make_progress(quiet) as bar:
        result = metrics_lib.generation_metrics(
            s_points,
            r_points,
            sample_mask=s_mask,
            ref_mask=r_mask,
            metrics=chosen,
            seed=seed,
            max_sets=max_sets,
            emd_solver=emd_solver,
            emd_search=emd_search,
            jsd_protocol=protocol,
            progress=_phases(bar),
        )
    normalization = {"samples": _normalization(samples), "refs": _normalization(refs)}
    return {**result, "normalization": normalization, "units": metrics_lib.METRIC_UNITS, "table_scale": TABLE_SCALE,
            "notes": outside_grid_notes({"samples": result})}


def _normalization(path: Path) -> str:
    """The normalisation an HDF5 dataset records; "as given" for arrays and folders (not known)."""
    from pointset_cli.data.collections import is_dataset
    from pointset_cli.data.schema import SetDataset

    if str(path) == "-" or not is_dataset(path):
        return "as given"
    with SetDataset(path) as ds:
        return ds.normalization


def _phases(bar: Any) -> Callable[[str, int, int], None]:
    """A (phase, done, total) callback giving each named phase its own bar: its own count, clock and
    time left (one shared bar went back to lower counts, and its clock stopped at the first total)."""
    tasks: dict[str, int] = {}

    def report(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, status="")
        bar.update(tasks[phase], completed=done, total=total)

    return report


def _method(row: dict) -> str:
    """How a generation row was computed: EMD solver and JSD grid, for a table title."""
    parts = []
    if "emd_solver" in row:
        bound = row.get("emd_error_bound", 0.0)
        parts.append(f"EMD by {row['emd_solver']}, " + ("exact" if not bound else f"each within {bound:.2g} of the optimum"))
    if "emd_pairs_solved" in row:
        parts.append(f"EMD-nearest sets from {row['emd_pairs_solved']:,} of {row['emd_pairs']:,} pairs "
                     "(lower bounds rule out the rest)")
    if "jsd_resolution" in row:
        grid = "x".join([str(row["jsd_resolution"])] * len(row["jsd_shift"]))
        parts.append(f"JSD on a {grid} grid in the ball of radius 0.5 ({row['jsd_protocol']} protocol)")
    return "; ".join(parts)


def _print_table(result: dict, chosen: tuple[str, ...]) -> None:
    from rich.table import Table

    norm = result["normalization"]
    title = (f"{result['n_samples']} samples vs {result['n_refs']} references, {result['n_points']} points "
             f"(normalisation: samples {norm['samples']}, references {norm['refs']}; distances in the sets' own units)")
    table = Table(title="; ".join(filter(None, (title, _method(result)))))
    for name in chosen:
        table.add_column(UNITS[name][0], justify="right")
    table.add_row(*(f"{result[name] * UNITS[name][1]:.2f}" for name in chosen))
    out_console.print(table)


def _eval_run(run: Path, data: Path | None, split: str | None, what: str, seed: int, max_sets: int | None,
             fmt: OutputFormat, quiet: bool, metrics: tuple[str, ...] | None = None,
             checkpoint: str | None = None, protocol: str = "raw", emd_search: str = "bounds",
             fscore_tau: float | None = None) -> None:
    from pointset_cli.run import folder
    from pointset_cli.run.evaluate import evaluate_run

    trained = load_run(run, checkpoint)
    with make_progress(quiet) as bar:
        result = evaluate_run(trained, data, split, what, seed, max_sets, metrics=metrics, progress=_phases(bar),
                              notify=None if quiet else lambda line: err_console.print(line, highlight=False),
                              jsd_protocol=protocol, emd_search=emd_search, fscore_tau=fscore_tau)
    result["table_scale"] = TABLE_SCALE
    folder.write_json(trained.paths.eval_json, result)
    if fmt == OutputFormat.json:
        print_json(result)
    else:
        _print_run_tables(result)
        err_console.print(f"scored the checkpoint of step {trained.step}; wrote {trained.paths.eval_json}",
                          highlight=False)


def _print_run_tables(result: dict) -> None:
    from rich.table import Table

    where = (f"{result['split']} split of {result['dataset']} (normalisation: {result['normalization']}; "
             "distances in its units)")
    if "task" in result:
        _print_task_tables(result["task"], where)
    if "reconstruction" in result:
        rec = result["reconstruction"]
        table = Table(title=f"Reconstruction, {rec['n_sets']} sets, {where}; EMD by {rec['emd_solver']}, exact")
        for key, (title, _) in RECON_UNITS.items():
            table.add_column(title, justify="right")
        table.add_row(*(f"{rec[k] * f:.2f}" for k, (_, f) in RECON_UNITS.items()))
        out_console.print(table)
    if "generation" in result:
        gen = result["generation"]
        names = [k for k in UNITS if k in gen["model"]]
        title = f"Generation, {gen['model']['n_samples']} samples vs {gen['model']['n_refs']} references, {where}"
        table = Table(title="; ".join(filter(None, (title, _method(gen["model"])))), caption=ORACLE_NOTE)
        table.add_column("")
        for name in names:
            table.add_column(UNITS[name][0], justify="right")
        for row in ("model", "oracle"):
            table.add_row(row, *(f"{gen[row][name] * UNITS[name][1]:.2f}" for name in names))
        out_console.print(table)
        for note in gen["notes"]:
            err_console.print(note, highlight=False)
    if "likelihood" in result:
        nll = result["likelihood"]
        table = Table(title=f"Likelihood, {nll['n_sets']} sets, {where}, unit volume U = {nll['unit_volume']:.4g}")
        for title in ("NLL (nats/set)", "size term", "point term", "bits/point"):
            table.add_column(title, justify="right")
        table.add_row(*(f"{nll[k]:.2f}" for k in ("nll", "size_nll", "point_nll", "bits_per_point")))
        out_console.print(table)


def _print_task_tables(task: dict, where: str) -> None:
    """The set-to-set scores of the model and the two baselines, overall and F-score per class."""
    from rich.table import Table

    from pointset_cli.run.set_to_set import ROW_TITLES

    title = (f"{task['task'].capitalize()}, {task['n_sets']} sets, {where}; F-score within "
             f"{task['fscore_tau']:g} of each target's bounding-box diagonal; "
             + _method({k: task[k] for k in ("emd_solver", "emd_error_bound")}))
    caption = (f"input itself: the input scored as the output; nearest training shape: the one of "
               f"{task['nearest_candidates']:,} training sets nearest each input (one-sided CD from the input)")
    table = Table(title=title, caption=caption)
    table.add_column("")
    for column, _ in TASK_UNITS.values():
        table.add_column(column, justify="right")
    for row, scores in task["rows"].items():
        table.add_row(ROW_TITLES[row], *(f"{scores[k] * f:.2f}" for k, (_, f) in TASK_UNITS.items()))
    out_console.print(table)
    classes = list(task["rows"]["model"]["per_class"])
    if len(classes) > 1:
        per = Table(title="F-score (%) per class")
        per.add_column("")
        for name in classes:
            per.add_column(name, justify="right")
        for row, scores in task["rows"].items():
            per.add_row(ROW_TITLES[row], *(f"{scores['per_class'][c]['fscore'] * 100:.1f}" for c in classes))
        out_console.print(per)
