"""The task suite: every method on every task, several seeds, one table.

    python benchmarks/tasks.py                      # all tasks, all methods, seeds 0 1 2
    python benchmarks/tasks.py --tasks promoters_chr20 --methods cnn hyena-pretrained --seeds 0

Tasks are the labelled sets in ``data/tasks`` (rebuilt by ``python -m hyenadna.tasks build``);
each has a recipe, ``configs/tasks/<task>.yaml``, a plain ``hyenadna finetune`` config chosen on
the validation split. Methods, all trained and early-stopped on the same splits:

* ``kmer``: logistic regression on 3-5-mer frequencies, its C chosen on the validation split;
* ``markov``: a Markov-chain classifier (:mod:`hyenadna.analysis.markov_baseline`), one chain per
  class, its order (0-8), smoothing and strands chosen on the validation split;
* ``cnn``: the convolutional baseline (:mod:`hyenadna.heads.cnn`), the recipe with ``model.name_or_path: cnn``;
* ``hyena-scratch``: ``tiny-1k`` from random weights, the recipe otherwise unchanged;
* ``hyena-chr20``: the bundled human model ``tiny-1k-chr20``, only where the recipe starts from
  another model (``bacteria4`` starts from ``tiny-1k-bacteria4``, pretrained further on the task's
  own training stretches); elsewhere it is ``hyena-pretrained`` and is not run twice;
* ``hyena-pretrained``: the recipe as written (``tiny-1k-chr20``, or ``tiny-1k-bacteria4``;
  ``tiny-1k-genomes`` for ``elements_chr20``);
* ``hyena-tuned``: the recipe ``hyenadna tune`` chose on the validation split,
  ``configs/tasks/tuned/<task>.yaml`` (its ``best_recipe.yaml``; for splice sites with head
  options adopted since on validation, as its header says), where the task has one; the
  tune's own final runs (the same command, seeds 0-2) may be copied into ``OUT`` as its cache;
* ``cnn-tuned``: the same for the CNN, ``configs/tasks/tuned/cnn_<task>.yaml``, from a search
  with the Hyena search's budget (``configs/search/cnn_<task>.yaml``).

Each run is a ``hyenadna finetune`` process writing ``OUT/<task>/<method>/seed<k>/metrics.json``;
a run whose metrics exist is not repeated, so the suite resumes where it stopped. The table
(``OUT/tasks.md`` and ``OUT/tasks.json``) gives mean ± sd over seeds of the test metrics;
``--update`` keeps the cells of an earlier table that this call does not compute.

``--calibrate``: every fine-tuned run is also calibrated on its validation split
(``--tuning.calibrate``; a cached run without it gets ``hyenadna calibrate``), and the table gains
the test MCC of the calibrated probabilities (bias-corrected temperature scaling, fitted on the
validation split only). The k-mer and Markov baselines are not calibrated.

``--precision bf16-mixed``: every fine-tuning run with ``--trainer.precision bf16-mixed`` (on a
CPU with AMX, the fused training functions' products in bfloat16), its runs in
``OUT/bf16-mixed`` and its table in ``benchmarks/results/tasks/bf16-mixed`` unless ``--table``
says otherwise, so the recipes' float32 table is never overwritten by it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("tf_oct4_mafk", "splice_chr20", "promoters_chr20", "bacteria4")
NEW_TASKS = ("elements_chr20",)
"""Tasks outside the suite's table, run only when named (``--tasks elements_chr20 --table DIR``):
the checks of ``hyenadna tune`` on a task no recipe was written for."""
BASELINES = ("kmer", "markov")
METHODS = ("kmer", "markov", "cnn", "cnn-tuned", "hyena-scratch", "hyena-chr20", "hyena-pretrained", "hyena-tuned")
METRICS = ("accuracy", "mcc", "macro_f1", "auroc")
OVERRIDES = {
    "cnn": ["--model.name_or_path", "cnn", "--head.kind", "linear"],
    "hyena-scratch": ["--model.name_or_path", "tiny-1k"],
    "hyena-chr20": ["--model.name_or_path", "tiny-1k-chr20"],
    "hyena-pretrained": [],
    "hyena-tuned": [],
    "cnn-tuned": [],
}
TUNED = {"hyena-tuned": "", "cnn-tuned": "cnn_"}
"""Methods whose recipe ``hyenadna tune`` chose: the file name's prefix in ``configs/tasks/tuned``."""


def recipe_of(task: str, method: str) -> Path:
    """The recipe a method runs: the tuned one for a tuned method, else the task's own."""
    if method in TUNED:
        return ROOT / "configs/tasks/tuned" / f"{TUNED[method]}{task}.yaml"
    return ROOT / "configs/tasks" / f"{task}.yaml"


def recipe_model(task: str) -> str:
    """The model the task's recipe starts from."""
    import yaml

    return yaml.safe_load((ROOT / "configs/tasks" / f"{task}.yaml").read_text())["model"]["name_or_path"]


def runs_of(task: str, method: str) -> bool:
    """Whether ``method`` is a run of its own on ``task`` (``hyena-chr20`` only where the recipe
    starts from another model)."""
    if method in TUNED:
        return recipe_of(task, method).is_file()
    return method not in BASELINES and not (method == "hyena-chr20" and recipe_model(task) == OVERRIDES[method][-1])


def finetune_run(
    task: str,
    method: str,
    seed: int,
    out: Path,
    threads: int | None = None,
    calibrate: bool = False,
    precision: str | None = None,
) -> dict:
    """One ``hyenadna finetune`` of the task's recipe (cached in ``out``), on ``threads`` threads;
    with ``calibrate``, calibrated on the validation split (a cached run afterwards); with
    ``precision``, at that trainer precision instead of the recipe's."""
    label = f"{task} {method} seed {seed}"
    folder = out / task / method / f"seed{seed}"
    extra = ["--tuning.calibrate", "true"] if calibrate else []
    extra += ["--trainer.precision", precision] if precision else []
    metrics = finetune_process(recipe_of(task, method), OVERRIDES[method] + extra, seed, folder, threads, label)
    if calibrate and "test_calibrated" not in metrics:
        hyenadna_process(["calibrate", "--run", str(folder)], threads)
        metrics = json.loads((folder / "metrics.json").read_text())
    return metrics


def finetune_process(
    recipe: Path, options: list[str], seed: int, folder: Path, threads: int | None = None, label: str = ""
) -> dict:
    """``hyenadna finetune --config RECIPE OPTIONS`` into ``folder`` as a process of its own
    (``threads`` OpenMP threads), unless its ``metrics.json`` exists; returns the metrics."""
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        command = ["finetune", "--config", str(recipe), *options, "--seed", str(seed), "--output", str(folder),
                   "--overwrite", "--tuning.baseline", "false", "--trainer.progress_bar", "false"]  # fmt: skip
        start = time.perf_counter()
        hyenadna_process(command, threads)
        print(f"{label or folder}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return json.loads(metrics.read_text())


def hyenadna_process(arguments: list[str], threads: int | None = None) -> None:
    """``hyenadna ARGUMENTS`` as a process of its own (``threads`` OpenMP threads); its
    stderr's tail in the exit message if it fails."""
    command = [sys.executable, "-m", "hyenadna.cli", *arguments]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}\nfailed:\n{done.stderr[-3000:]}")


def baseline_run(task: str, method: str, out: Path) -> dict:
    """A deterministic baseline (one run, cached in ``out``) on the task's table."""
    from hyenadna.data.datamodules import LabelledDataModule

    data = LabelledDataModule(ROOT / "data/tasks" / f"{task}.csv.gz", reader={"split_col": "split", "name_col": "name"})
    return cached_baseline(method, data, out / task / method)


def cached_baseline(method: str, data, folder: Path) -> dict:
    """The k-mer model with C, or the Markov classifier with its order, smoothing and strands,
    chosen by validation MCC, fitted on ``data`` (a LabelledDataModule); cached in ``folder``."""
    from hyenadna.analysis.kmer_baseline import kmer_baseline
    from hyenadna.analysis.markov_baseline import markov_baseline

    metrics = folder / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())
    data.setup("fit")
    split = {s: ([r.sequence for r in d.records], np.stack(d.targets)) for s, d in data.datasets.items()}
    start = time.perf_counter()
    if method == "kmer":
        test = kmer_baseline(data.task, *split["train"], *split["test"], val=split["val"])
        chosen = {"c": test.pop("c")}
    else:
        test = markov_baseline(*split["train"], *split["test"], val=split["val"])
        chosen = {key: test.pop(key) for key in ("order", "beta", "both_strands")}
    result = {"test": test, **chosen, "train_seconds": time.perf_counter() - start}
    folder.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(result, indent=2) + "\n")
    return result


def summarise(results: dict) -> tuple[dict, str]:
    """Mean and sd over seeds per task and method, and the Markdown table (MCC and accuracy)."""
    summary: dict = {}
    for task, methods in results.items():
        for method, runs in methods.items():
            cell = spread(runs, "test")
            if runs and all("test_calibrated" in r for r in runs):
                cell["calibrated"] = spread(runs, "test_calibrated")
            cell["train_seconds"] = statistics.fmean(r.get("train_seconds", 0.0) for r in runs)
            summary.setdefault(task, {})[method] = cell
    return summary, table_of(summary)


def spread(runs: list[dict], key: str) -> dict:
    """Mean, sd and count over ``runs`` of each metric in their ``key`` (``test``...)."""
    cell = {}
    for metric in METRICS:
        values = [r[key][metric] for r in runs if metric in r[key]]
        if values:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cell[metric] = {"mean": statistics.fmean(values), "sd": sd, "n": len(values)}
    return cell


def table_of(summary: dict) -> str:
    """The Markdown tables (test MCC and accuracy, and the calibrated test MCC where runs have it)
    of per-task, per-method cells."""
    methods = [m for m in METHODS if any(m in s for s in summary.values())]
    lines = []
    for metric in ("mcc", "accuracy"):
        lines += table_rows(f"**test {metric}** (mean ± sd over seeds)", summary, methods, lambda c, m=metric: c.get(m))
    calibrated = [m for m in methods if any("calibrated" in s.get(m, {}) for s in summary.values())]
    if calibrated:
        title = "**test mcc, calibrated on the validation split** (bias-corrected temperature scaling; mean ± sd)"
        lines += table_rows(title, summary, calibrated, lambda c: c.get("calibrated", {}).get("mcc"))
    if "hyena-chr20" in methods:
        lines += ["hyena-chr20 is blank where the recipe itself starts from tiny-1k-chr20 (hyena-pretrained).", ""]
    return "\n".join(lines)


def table_rows(title: str, summary: dict, methods: list[str], pick) -> list[str]:
    """One Markdown table: a row per task, a column per method, ``pick(cell)`` shown as mean ± sd."""
    lines = [title, "", "| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for task, cells in summary.items():
        row = []
        for m in methods:
            c = pick(cells.get(m, {}))
            row.append(f"{c['mean']:.3f} ± {c['sd']:.3f}" if c else "")
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS + NEW_TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1,
                        help="fine-tuning runs at once, each on cores/jobs threads (small batches use cores "
                             "better as separate processes than as threads of one)")  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "runs/tasks"), help="run folders (resumable)")
    parser.add_argument("--table", help="where tasks.md/json go (default: benchmarks/results/tasks[/PRECISION])")
    parser.add_argument(
        "--update", action="store_true", help="keep the earlier table's cells this call does not compute"
    )
    parser.add_argument(
        "--calibrate", action="store_true", help="also calibrate each fine-tuned run on its validation split"
    )
    parser.add_argument(
        "--precision", choices=["32-true", "bf16-mixed"], help="fine-tune at this precision, not the recipes'"
    )
    args = parser.parse_args()
    out = Path(args.out) / (args.precision or "")
    table_dir = Path(args.table) if args.table else ROOT / "benchmarks/results/tasks" / (args.precision or "")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    runs = [(t, m, s) for t in args.tasks for m in args.methods if runs_of(t, m) for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = dict(zip(runs, pool.map(lambda r: finetune_run(*r, out, threads, args.calibrate, args.precision), runs)))
    results: dict = {}
    for task in args.tasks:
        for method in args.methods:
            if method in BASELINES:
                results.setdefault(task, {})[method] = [baseline_run(task, method, out)]
            elif runs_of(task, method):
                results.setdefault(task, {})[method] = [done[(task, method, s)] for s in args.seeds]
    if args.update and (table_dir / "tasks.json").is_file():
        earlier = json.loads((table_dir / "tasks.json").read_text())["summary"]
        summary, _ = summarise(results)
        for task, cells in summary.items():
            earlier.setdefault(task, {}).update(cells)
        summary, table = earlier, table_of(earlier)
    else:
        summary, table = summarise(results)
    table_dir.mkdir(parents=True, exist_ok=True)
    (table_dir / "tasks.json").write_text(json.dumps({"seeds": args.seeds, "summary": summary}, indent=2) + "\n")
    (table_dir / "tasks.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
