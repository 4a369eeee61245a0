"""`pointset eval RUN [DATA.h5]`: score a trained run (reconstruction and generation), write RUN/eval.json."""

from __future__ import annotations

from pathlib import Path

from pointset_cli.cli._common import OutputFormat, err_console, make_progress, out_console, print_json

RECON_UNITS = {
    "cd": ("CD (x10^3)", 1e3),
    "emd": ("EMD (x10^2)", 1e2),
    "cd_own_size": ("CD at own size (x10^3)", 1e3),
    "cardinality_accuracy": ("size acc. (%)", 100.0),
}


def eval_run(run: Path, data: Path | None, split: str, what: str, seed: int, max_sets: int | None,
             fmt: OutputFormat, quiet: bool, metrics: tuple[str, ...] | None = None) -> None:
    from pointset_cli import rundir
    from pointset_cli.cli.sample import load
    from pointset_cli.evaluation import evaluate_run

    trained = load(run)
    with make_progress(quiet) as bar:
        task = bar.add_task("distances", total=None, status="")
        result = evaluate_run(trained, data, split, what, seed, max_sets, metrics=metrics,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    rundir.write_json(trained.paths.eval_json, result)
    if fmt == OutputFormat.json:
        print_json(result)
    else:
        print_tables(result)
        err_console.print(f"wrote {trained.paths.eval_json}", highlight=False)


def print_tables(result: dict) -> None:
    from rich.table import Table

    from pointset_cli.cli.evaluate import UNITS

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
