"""Quality on real data through the command line: each model trained with the same budget, then scored.

    python bench/quality.py mnist       # every built-in decoder on MNIST sets: test CD, size accuracy
    python bench/quality.py modelnet    # ModelNet10 autoencoder (recon CD/EMD) + chair generation vs oracle
    python bench/quality.py tasks       # ModelNet10 complete / denoise / upsample: the intermediate set
                                        # (k = 8 PMA seeds) vs one vector (k = 1), beside the two baselines
    python bench/quality.py conditional # MNIST label -> set: a style code (the default) vs the label alone
    python bench/quality.py likelihood --ae-run bench/work/runs/mnist_tspn
                                        # poisson / setflow / gast: test NLL + generation metrics vs oracle
    python bench/quality.py gan64       # GAST against the poisson baseline on digits of at most 64 points

Everything goes through `pointset prepare | train | eval | sample` (the commands are printed and stored
with the figures), in a work folder (default bench/work/, reused: finished runs are not retrained and an
interrupted one resumes). `--jobs` runs that many at once (default 2: more steps per second out of
2 cores than one job on both). Jobs are not pinned to a core: with one XLA thread the Chamfer
kernel's host callback deadlocks, so pointset then falls back to its pure-JAX search.

Writes bench/results/quality_<suite>.json (figures, commands, wall times) and PNG renders
bench/results/quality_<suite>_<run>.png; prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from pointset_cli.models.builtins import BUILTINS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
PS = str(Path(sys.executable).with_name("pointset"))
MODELNET = DATA / "modelnet10_pcd1024" / "ModelNet10" / "pcd"


@dataclass
class Job:
    """One run: train (resuming if interrupted), then the eval/sample commands; `cost` orders the queue."""

    name: str
    train: list[str]
    after: list[list[str]]
    cost: float
    run: str = ""  # folder under work/runs (default: name)
    minutes: float | None = None  # a wall-clock budget instead of --steps: see budget_steps


PROBE_STEPS = 30


def budget_steps(job: Job, work: Path) -> list[str]:
    """The train options that give `job` `job.minutes` of training: the steps it can take in 90% of the
    budget at the rate a 30-step probe run measures under the same load (so its learning-rate schedule
    runs to its end), capped by --max-minutes. Validation four times, as in the step-budget runs."""
    probe = work / "probe" / job.name
    run([*job.train, "--steps", str(PROBE_STEPS), "--set", "train.log_every=5", "--eval-every", str(PROBE_STEPS),
         "--set", "train.prior_sets=32", "--run-dir", str(probe), "--overwrite", "-q"])
    rates = sorted(r["steps_per_s"] for r in metric_rows(probe) if r.get("steps_per_s") and r["step"] > 5)  # not the compile
    steps = max(int(0.9 * 60 * job.minutes * rates[len(rates) // 2]), 4)
    return ["--steps", str(steps), "--eval-every", str(steps // 4), "--max-minutes", str(job.minutes)]


def metric_rows(run_dir: Path) -> list[dict]:
    """A run folder's metrics.jsonl rows."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def run(cmd: list[str], stdout=None) -> subprocess.CompletedProcess:
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, stdout=stdout, check=True, text=True)


def execute(job: Job, work: Path, train: bool = True) -> dict:
    """Train (or resume; not with train=False) and run the follow-up commands; returns {eval json..., walls}."""
    run_dir = work / "runs" / (job.run or job.name)
    done = run_dir / f"bench_{job.name}.json"
    if done.exists():
        return json.loads(done.read_text())
    start = time.time()
    train_cmd = job.train
    if job.train and train:
        resume = ["--resume"] if run_dir.exists() else []
        if job.minutes and not resume:
            train_cmd = [*job.train, *budget_steps(job, work)]
            start = time.time()
        run([*train_cmd, "--run-dir", str(run_dir), "-q", *resume])
    elif job.train and job.minutes and (run_dir / "config.yaml").is_file():  # --no-train: the budget it trained with
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())["train"]
        train_cmd = [*job.train, "--steps", str(cfg["steps"]), "--eval-every", str(cfg["eval_every"]),
                     "--max-minutes", str(job.minutes)]
    train_s = time.time() - start
    if job.train and not train and (run_dir / "metrics.jsonl").is_file():  # --no-train: the wall its training logged
        train_s = max((r["time"] for r in metric_rows(run_dir) if "time" in r), default=train_s)
    outputs = []
    for cmd in job.after:
        t = time.time()
        proc = run(cmd, stdout=subprocess.PIPE)
        outputs.append({"cmd": " ".join(cmd), "wall_s": round(time.time() - t, 1),
                        "json": json.loads(proc.stdout) if "--format" in cmd else None})
    result = {"name": job.name, "train_cmd": " ".join(train_cmd), "train_wall_s": round(train_s, 1),
              "steps_per_s": _steps_per_s(run_dir), "outputs": outputs}
    done.write_text(json.dumps(result, indent=1))
    return result


def _steps_per_s(run_dir: Path) -> float | None:
    rates = [r["steps_per_s"] for r in metric_rows(run_dir) if r.get("steps_per_s")]
    return round(sorted(rates)[len(rates) // 2], 3) if rates else None


def run_all(jobs: list[Job], work: Path, parallel: int, train: bool = True) -> list[dict]:
    todo: queue.Queue[Job] = queue.Queue()
    for job in sorted(jobs, key=lambda j: -j.cost):
        todo.put(job)
    results, errors = {}, []

    def worker() -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[job.name] = execute(job, work, train)
            except subprocess.CalledProcessError as exc:
                errors.append(f"{job.name}: {exc}")

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("failed: " + "; ".join(errors))
    return [results[j.name] for j in jobs]


def prepare(work: Path, out: str, args: list[str]) -> Path:
    path = work / out
    if not path.exists():
        run([PS, "prepare", *args, "-o", str(path), "-q"])
    return path


# Relative step costs (seconds per step at B=32 on one core, measured by bench/models.py): longest first;
# a decoder not listed is scheduled as costing 1.0.
MNIST_COST = {"mlp": 0.05, "rnn": 0.5, "dspn": 3.6, "tspn": 0.75, "slot": 0.95, "queries": 1.3}


def mnist_data(work: Path) -> tuple[Path, Path]:
    """Train on the 5,000 shared digits (10% val), test on the bundled MNIST test set (10,000 digits)."""
    train = prepare(work, "mnist5k.h5", [str(DATA / "mnist5k_train"), "--val-fraction", "0.1"])
    test = prepare(work, "mnist_test.h5", [str(ROOT / "data" / "mnist_t10k"), "--test-fraction", "1.0"])
    return train, test


def render_cmd(work: Path, name: str, *source: str, n: int = 16) -> list[str]:
    """`pointset sample` n sets (or reconstructions with `--reconstruct DATA --split test`, or a
    set-to-set run's outputs with `--from DATA --split test`) into a PNG grid."""
    return [PS, "sample", str(work / "runs" / name), *source, "-n", str(n), "--seed", "0",
            "--out", str(work / "renders" / name), "--render", str(work / f"{name}.png"), "--force", "-q"]


def eval_cmd(work: Path, name: str, *args: str) -> list[str]:
    return [PS, "eval", str(work / "runs" / name), *args, "--format", "json", "-q"]


def budget(steps: int, minutes: float | None, loss: str | None = None) -> tuple[list[str], str]:
    """The train options and the run-name suffix of a step budget or (given) a wall-clock one, and
    of a set loss other than the default."""
    options, suffix = ([], f"_{minutes:g}min") if minutes else (
        ["--steps", str(steps), "--eval-every", str(max(steps // 4, 1))], "")
    return (options + ["--loss", loss], f"{suffix}_{loss}") if loss else (options, suffix)


def mnist_jobs(work: Path, steps: int, models: list[str], minutes: float | None = None,
               loss: str | None = None) -> list[Job]:
    train, test = mnist_data(work)
    options, suffix = budget(steps, minutes, loss)
    jobs = []
    for model in models:
        name = f"mnist_{model}{suffix}"
        jobs.append(Job(
            name,
            [PS, "train", str(train), "--model", model, *options, "--batch-size", "32", "--seed", "0"],
            [eval_cmd(work, name, str(test), "--split", "test", "--what", "recon", "--max-sets", "1000"),
             render_cmd(work, name, "--reconstruct", str(test), "--split", "test")],
            minutes or MNIST_COST.get(model, 1.0) * steps, minutes=minutes,
        ))
    return jobs


def conditional_jobs(work: Path, steps: int, models: list[str]) -> list[Job]:
    """`--task conditional` on MNIST sets, with a style code (the default) and with the label alone
    (style_dim 0); generation scored on 500 test digits, each sample asked for a test digit's label."""
    train, test = mnist_data(work)
    jobs = []
    for model, style in itertools.product(models, (None, 0)):
        name = f"conditional_{model}" + ("" if style is None else "_label_only") + f"_{steps}"
        jobs.append(Job(
            name,
            [PS, "train", str(train), "--model", model, "--task", "conditional", "--steps", str(steps),
             "--batch-size", "32", "--eval-every", str(max(steps // 4, 1)), "--seed", "0",
             *([] if style is None else ["--set", f"model.style_dim={style}"])],
            [eval_cmd(work, name, str(test), "--split", "test", "--what", "gen", "--max-sets", "500",
                      "--metrics", "mmd_cd,cov_cd,nna_cd"),
             render_cmd(work, name, "--label", "7", n=8)],
            MNIST_COST.get(model, 1.0) * steps,
        ))
    return jobs


# Options and peak learning rates of the likelihood models (`--set model.decoder_options.KEY=VALUE`).
DENSITY = {
    "poisson": ({"components": 32}, 3e-2, 0.05),
    "setflow": ({"steps": 8, "hidden": 64}, 1e-3, 3.0),
    "gast": ({}, 2e-4, 1.0),
}
GEN_CD = "mmd_cd,cov_cd,nna_cd,jsd"


def likelihood_jobs(work: Path, steps: int, ae_run: str | None) -> list[Job]:
    """poisson / setflow / gast on MNIST sets and ModelNet10 chairs (256 points); NLL + generation metrics."""
    train, test = mnist_data(work)
    chair = prepare(work, "chair256.h5", [str(MODELNET / "chair"), "--points", "256", "--normalize", "sphere",
                                          "--val-fraction", "0.05"])
    jobs = []
    for data, path, evaluate in (("mnist", train, [str(test), "--max-sets", "500"]), ("chair", chair, [])):
        for model, (options, lr, cost) in DENSITY.items():
            if data == "chair" and model == "gast":
                continue
            name = f"{data}_{model}"
            sets = [a for k, v in options.items() for a in ("--set", f"model.decoder_options.{k}={v}")]
            scores = [eval_cmd(work, name, *evaluate, "--split", "test", "--what", "gen", "--metrics", GEN_CD)]
            if model != "gast":  # the NLL over the whole test split (all 10,000 MNIST test digits)
                scores.append(eval_cmd(work, name, *evaluate[:1], "--split", "test", "--model-nll"))
            jobs.append(Job(
                name,
                [PS, "train", str(path), "--model", model, "--steps", str(steps), "--batch-size", "32", "--lr",
                 str(lr), "--eval-every", str(max(steps // 4, 1)), "--seed", "0", *sets],
                [*scores, render_cmd(work, name)],
                cost * steps * (1 if data == "mnist" else 1.5),
            ))
    if ae_run:  # the best autoencoder of the MNIST suite, sampled from its l-GMM prior, on the same references
        run = Path(ae_run).name
        jobs.append(Job(f"{run}_gen", [], [eval_cmd(work, run, str(test), "--max-sets", "500", "--split", "test",
                                                    "--what", "gen", "--metrics", GEN_CD)], 0.0, run))
    return jobs


def gan64_jobs(work: Path, steps: int) -> list[Job]:
    """GAST and the poisson baseline on MNIST digits of at most 64 points, generation scored on 500
    test digits. 64 points because GAST's N x N attention, with the critic differentiated twice for
    R1, takes about 2 s a step at MNIST's 240-point training sets on the 2 cores and 0.2 s here."""
    train = prepare(work, "mnist5k_64.h5", [str(DATA / "mnist5k_train"), "--val-fraction", "0.1", "--max-points", "64"])
    test = prepare(work, "mnist_test_64.h5", [str(ROOT / "data" / "mnist_t10k"), "--test-fraction", "1.0",
                                              "--max-points", "64"])
    settings = {"gast": ("5e-4", ["--set", "optim.b1=0.5"]),  # Adam's b1 = 0.5, as GANs are usually trained
                "poisson": ("3e-2", ["--set", "model.decoder_options.components=32"])}
    jobs = []
    for model, (lr, options) in settings.items():
        name = f"gan64_{model}"
        jobs.append(Job(
            name,
            [PS, "train", str(train), "--model", model, "--steps", str(steps), "--batch-size", "32", "--lr", lr,
             "--eval-every", str(max(steps // 2, 1)), "--seed", "0", *options],
            [eval_cmd(work, name, str(test), "--split", "test", "--what", "gen", "--max-sets", "500",
                      "--metrics", "mmd_cd,cov_cd,nna_cd"),
             render_cmd(work, name)],
            steps * (0.4 if model == "gast" else 0.02),
        ))
    return jobs


def modelnet_jobs(work: Path, steps: int, models: list[str], minutes: float | None = None,
                  loss: str | None = None) -> list[Job]:
    allcls = prepare(work, "modelnet10.h5", [str(MODELNET), "--normalize", "sphere", "--val-fraction", "0.05"])
    chair = prepare(work, "chair.h5", [str(MODELNET / "chair"), "--normalize", "sphere", "--val-fraction", "0.05"])
    options, suffix = budget(steps, minutes, loss)
    jobs = []
    for model in models:
        common = ["--model", model, *options, "--batch-size", "32", "--seed", "0"]
        name = f"modelnet10_{model}{suffix}"
        jobs.append(Job(
            name, [PS, "train", str(allcls), *common],
            [eval_cmd(work, name, "--split", "test", "--what", "recon"),
             render_cmd(work, name, "--reconstruct", str(allcls), "--split", "test")],
            minutes or steps * 2.0, minutes=minutes,
        ))
        name = f"chair_{model}{suffix}"
        jobs.append(Job(
            name, [PS, "train", str(chair), *common],
            [eval_cmd(work, name, "--split", "test", "--what", "gen", "--metrics", GEN_CD),
             eval_cmd(work, name, "--split", "test", "--what", "gen", "--max-sets", "32", "--metrics",
                      "mmd_emd,cov_emd,nna_emd"),
             render_cmd(work, name)],
            minutes or steps * 1.0, minutes=minutes,
        ))
    return jobs


TASKS = ("complete", "denoise", "upsample")
TASK_SEEDS = (8, 1)  # PMA seeds of the Set Transformer encoder: an intermediate set of 8 tokens, or one vector
ATTENDING = ("tspn", "queries", "slot")  # decoders that attend to the encoder's set (the others: one DeepSets vector)
KEEPING = ("complete", "upsample")  # tasks whose input is part of the target: also trained with keep_input


def task_jobs(work: Path, steps: int, models: list[str], minutes: float | None = None,
              loss: str | None = None) -> list[Job]:
    """Each set-to-set task on all of ModelNet10 (1,024 points, sphere-normalised), per decoder and seed count."""
    allcls = prepare(work, "modelnet10.h5", [str(MODELNET), "--normalize", "sphere", "--val-fraction", "0.05"])
    options, suffix = budget(steps, minutes, loss)
    jobs = []
    for task in TASKS:
        for model in models:
            for seeds, keep in itertools.product(TASK_SEEDS if model in ATTENDING else (None,),
                                                 (False, True) if task in KEEPING else (False,)):
                name = (f"modelnet10_{task}_{model}" + (f"_k{seeds}" if seeds else "") + ("_keep" if keep else "")
                        + suffix)
                jobs.append(Job(
                    name,
                    [PS, "train", str(allcls), "--task", task, "--model", model, *options,
                     "--batch-size", "32", "--seed", "0",
                     *(["--set", f"model.encoder_options.seeds={seeds}"] if seeds else []),
                     *(["--set", "model.task_options.keep_input=true"] if keep else [])],
                    [eval_cmd(work, name, "--split", "test"),
                     render_cmd(work, name, "--from", str(allcls), "--split", "test", n=6)],
                    minutes or steps * 2.0, minutes=minutes,
                ))
    return jobs


def table(results: list[dict]) -> list[str]:
    lines = ["| run | steps/s | train wall | figures |", "| --- | --- | --- | --- |"]
    for r in results:
        figures = []
        for out in r["outputs"]:
            data = out["json"] or {}
            if "reconstruction" in data:
                rec = data["reconstruction"]
                figures.append(f"CD x10^3 {rec['cd'] * 1e3:.2f}, EMD x10^2 {rec['emd'] * 1e2:.2f} (true sizes); "
                               f"CD x10^3 {rec.get('cd_own_size', float('nan')) * 1e3:.2f}, size acc "
                               f"{rec['cardinality_accuracy'] * 100:.1f}%, nearest own input "
                               f"{rec.get('retrieval_accuracy', float('nan')) * 100:.1f}% (own sizes; {rec['n_sets']} sets)")
            if "task" in data:
                rows = data["task"]["rows"]
                figures.append("; ".join(f"{row} CD x10^3 {rows[row]['cd'] * 1e3:.2f}, EMD x10^2 {rows[row]['emd'] * 1e2:.2f}, "
                                         f"F {rows[row]['fscore'] * 100:.1f}%" for row in rows))
            if "likelihood" in data:
                nll = data["likelihood"]
                figures.append(f"NLL {nll['nll']:.1f} nats/set (size {nll['size_nll']:.2f}, points "
                               f"{nll['point_nll']:.1f}), {nll['bits_per_point']:.3f} bits/point, U={nll['unit_volume']:.3g}")
            if "generation" in data:
                gen = data["generation"]
                figures.append("; ".join(f"{k} {gen['model'][k]:.4g} (oracle {gen['oracle'][k]:.4g})"
                                         for k in gen["model"] if isinstance(gen["model"][k], float)))
        lines.append(f"| {r['name']} | {r['steps_per_s']} | {r['train_wall_s']:.0f} s | {' / '.join(figures)} |")
    return lines


SUITES = {  # suite -> (jobs builder, default steps, default models)
    "mnist": (lambda work, steps, models, ae, minutes, loss: mnist_jobs(work, steps, models, minutes, loss), 600,
              ",".join(BUILTINS["decoder"])),
    "modelnet": (lambda work, steps, models, ae, minutes, loss: modelnet_jobs(work, steps, models, minutes, loss),
                 2000, "mlp"),
    "likelihood": (lambda work, steps, models, ae, minutes, loss: likelihood_jobs(work, steps, ae), 6000, ""),
    "tasks": (lambda work, steps, models, ae, minutes, loss: task_jobs(work, steps, models, minutes, loss), 1000, "tspn"),
    "conditional": (lambda work, steps, models, ae, minutes, loss: conditional_jobs(work, steps, models), 600, "tspn"),
    "gan64": (lambda work, steps, models, ae, minutes, loss: gan64_jobs(work, steps), 1500, ""),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="+", choices=list(SUITES), help="suites to run (their jobs share one queue)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model (default: per suite)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="mnist, modelnet, tasks: a wall-clock training budget per model instead of --steps")
    parser.add_argument("--loss", default=None, help="mnist, modelnet, tasks: train with this set loss (default: chamfer)")
    parser.add_argument("--models", default=None, help="comma-separated decoders (mnist, modelnet, tasks, conditional)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--ae-run", default=None, help="likelihood: also score this MNIST autoencoder run's samples")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once")
    parser.add_argument("--only", default=None, help="comma-separated job names to run (others are left out)")
    parser.add_argument("--no-train", action="store_true",
                        help="evaluate the runs already in the work folder (trained elsewhere, e.g. on a GPU, "
                             "by the printed train commands) without resuming them")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = {}
    for suite in args.suites:
        build, steps, models = SUITES[suite]
        jobs[suite] = [j for j in build(args.work, args.steps or steps, (args.models or models).split(","), args.ae_run,
                                    args.minutes, args.loss)
                       if args.only is None or j.name in args.only.split(",")]
    start = time.time()
    results = run_all([j for js in jobs.values() for j in js], args.work, args.jobs, not args.no_train)
    RESULTS.mkdir(exist_ok=True)
    for r in results:
        png = args.work / f"{r['name']}.png"
        if png.exists():
            shutil.copyfile(png, RESULTS / f"quality_{r['name']}.png")
    for suite, suite_jobs in jobs.items():
        names = {j.name for j in suite_jobs}
        rows = [r for r in results if r["name"] in names]
        out = RESULTS / f"quality_{suite}.json"
        # Runs not redone this time stay: a row is its train command (a name at another budget is another row).
        earlier = json.loads(out.read_text())["runs"] if out.exists() else []
        redone = {r["train_cmd"] for r in rows}
        rows = [r for r in earlier if r["train_cmd"] not in redone] + rows
        out.write_text(json.dumps({"suite": suite, "wall_s": round(time.time() - start, 1), "runs": rows}, indent=1))
        print("\n".join(table(rows)))
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
