"""`pointset eval RUN` (a trained run on a dataset split) and `pointset eval --samples PATH --refs PATH`
(any generated sets against references): the tables of the literature's metrics, or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pointset_cli.cli._common import (
    FormatOption,
    OutputFormat,
    QuietOption,
    err_console,
    handle_errors,
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
}


RECON_UNITS = {
    "cd": ("CD (x10^3)", 1e3),
    "emd": ("EMD (x10^2)", 1e2),
    "cd_own_size": ("CD at own size (x10^3)", 1e3),
    "cardinality_accuracy": ("size acc. (%)", 100.0),
    "retrieval_accuracy": ("nearest its own input (%)", 100.0),
}


def register(app: typer.Typer) -> None:
    @app.command("eval", help="Score generated sets against reference sets (MMD, COV, 1-NNA, JSD).")
    @handle_errors
    def evaluate(
        run: Optional[Path] = typer.Argument(None, help="A run folder to score (or use --samples/--refs)."),
        data: Optional[Path] = typer.Argument(None, help="With RUN: the dataset (default: the run's own)."),
        what: str = typer.Option("all", "--what", help="With RUN: recon, gen, nll or all."),
        model_nll: bool = typer.Option(False, "--model-nll", help="With RUN: only the likelihood (NLL per set, bits per point) of a density model."),
        samples: Optional[Path] = typer.Option(None, "--samples", help="Generated sets: dataset .h5, .npy/.npz [M, N, D] or folder of point files."),
        refs: Optional[Path] = typer.Option(None, "--refs", help="Reference sets, same forms as --samples."),
        metrics: str = typer.Option(",".join(METRIC_NAMES), "--metrics", help="Comma-separated subset of: " + ", ".join(METRIC_NAMES)),
        split: Optional[str] = typer.Option(None, "--split", help="Split to score (train, val, test): with RUN, of its dataset (default test); else of each HDF5 input among --samples/--refs (others are read whole)."),
        samples_split: Optional[str] = typer.Option(None, "--samples-split", help="Split of an HDF5 --samples (overrides --split)."),
        refs_split: Optional[str] = typer.Option(None, "--refs-split", help="Split of an HDF5 --refs (overrides --split)."),
        max_sets: Optional[int] = typer.Option(None, "--max-sets", min=1, help="Subsample each collection to this many sets (seeded)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the subsampling."),
        emd_solver: str = typer.Option("auto", "--emd-solver", help="EMD assignment solver: auto (= auction-numba when numba is installed, error bound reported), auction-numba, scipy (exact), optax (exact), auction."),
        fmt: OutputFormat = FormatOption,
        quiet: bool = QuietOption,
    ) -> None:
        from pointset_cli.data.schema import SPLITS

        chosen = _parse_metrics(metrics)
        for flag, value in (("--split", split), ("--samples-split", samples_split), ("--refs-split", refs_split)):
            if value is not None and value not in SPLITS:
                raise UsageError(f"{flag}: unknown split {value!r}; choose one of {', '.join(SPLITS)}")
        if run is not None:
            return _eval_run(run, data, split or "test", "nll" if model_nll else what, seed, max_sets, fmt, quiet,
                            chosen)
        if samples is None or refs is None:
            raise UsageError("give both --samples PATH and --refs PATH")
        from pointset_cli.data.collections import is_dataset

        splits = tuple(own or (split if is_dataset(path) else None)
                       for own, path in ((samples_split, samples), (refs_split, refs)))
        result = _score(samples, refs, chosen, splits, max_sets, seed, emd_solver, quiet)
        if fmt == OutputFormat.json:
            print_json(result)
        else:
            _print_table(result, chosen)


def _parse_metrics(text: str) -> tuple[str, ...]:
    chosen = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in chosen if m not in METRIC_NAMES]
    if unknown or not chosen:
        raise UsageError(f"unknown metric {unknown[0] if unknown else '(none)'!r} in --metrics; valid: {', '.join(METRIC_NAMES)}")
    return chosen


def _score(samples, refs, chosen, splits, max_sets, seed, emd_solver, quiet) -> dict:
    from pointset_cli import metrics as metrics_lib
    from pointset_cli.data.collections import read_sets
    from pointset_cli.errors import InputError
    from pointset_cli.distances.assignment import SOLVERS

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
        task = bar.add_task("distances", total=None, status="")
        return metrics_lib.generation_metrics(
            s_points,
            r_points,
            sample_mask=s_mask,
            ref_mask=r_mask,
            metrics=chosen,
            seed=seed,
            max_sets=max_sets,
            emd_solver=emd_solver,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def _print_table(result: dict, chosen: tuple[str, ...]) -> None:
    from rich.table import Table

    table = Table(title=f"{result['n_samples']} samples vs {result['n_refs']} references, {result['n_points']} points")
    for name in chosen:
        table.add_column(UNITS[name][0], justify="right")
    table.add_row(*(f"{result[name] * UNITS[name][1]:.2f}" for name in chosen))
    out_console.print(table)
    if "emd_solver" in result:
        bound = result.get("emd_error_bound", 0.0)
        how = "exact assignment" if not bound else f"auction assignment, each EMD within {bound:.2g} of the optimum"
        err_console.print(f"EMD by {how} ({result['emd_solver']}); distances in the sets' own units.")


def _eval_run(run: Path, data: Path | None, split: str, what: str, seed: int, max_sets: int | None,
             fmt: OutputFormat, quiet: bool, metrics: tuple[str, ...] | None = None) -> None:
    from pointset_cli.run import folder
    from pointset_cli.run.evaluate import evaluate_run

    trained = load_run(run)
    with make_progress(quiet) as bar:
        task = bar.add_task("distances", total=None, status="")
        result = evaluate_run(trained, data, split, what, seed, max_sets, metrics=metrics,
                              progress=lambda done, total: bar.update(task, completed=done, total=total),
                              notify=None if quiet else lambda line: err_console.print(line, highlight=False))
    folder.write_json(trained.paths.eval_json, result)
    if fmt == OutputFormat.json:
        print_json(result)
    else:
        _print_run_tables(result)
        err_console.print(f"wrote {trained.paths.eval_json}", highlight=False)


def _print_run_tables(result: dict) -> None:
    from rich.table import Table

    where = f"{result['split']} split of {result['dataset']} (normalisation: {result['normalization']})"
    if "reconstruction" in result:
        rec = result["reconstruction"]
        table = Table(title=f"Reconstruction, {rec['n_sets']} sets, {where}")
        for key, (title, _) in RECON_UNITS.items():
            table.add_column(title, justify="right")
        table.add_row(*(f"{rec[k] * f:.2f}" for k, (_, f) in RECON_UNITS.items()))
        out_console.print(table)
    if "generation" in result:
        gen = result["generation"]
        names = [k for k in UNITS if k in gen["model"]]
        table = Table(title=f"Generation, {gen['model']['n_samples']} samples vs {gen['model']['n_refs']} references, {where}")
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
