"""What the context buys: the task suite's long-context task at several window lengths.

    python benchmarks/context_curve.py                                   # 1k 4k 16k 32k, seed 0
    python benchmarks/context_curve.py --contexts 1024 4096 --seeds 0 1 2 --methods cnn hyena

The task is ``genic_chr20`` (:func:`hyenadna.tasks.gene_regions.gene_body_centres`): whether a
position of human chr20 lies in a gene body or between genes, every position at least 2 kb from a
transcript's start or end. Its 1,600 positions (``data/tasks/genic_chr20.bed``) are the same at
every context; only ``data.reader.length``, the window read around each, changes. So does nothing
else: the recipe (``configs/tasks/genic_chr20.yaml``) is one for all contexts, chosen before any
test run, because a curve whose points were tuned one by one would measure the tuning.

Methods, on the same splits at each context:

* ``kmer``: logistic regression on 3-5-mer frequencies of the whole window, C chosen on validation;
* ``markov``: the per-class Markov-chain classifier, order and smoothing chosen on validation;
* ``cnn``: the convolutional baseline, the recipe with ``model.name_or_path: cnn`` (its dense
  layer reads the whole feature map, so it grows with the window);
* ``cnn-max``: the same CNN with ``readout: max``, each channel's maximum over the window, the
  global pooling of long-window CNNs (a motif counts wherever it sits);
* ``hyena``: the recipe as written: the bundled ``tiny-32k-chr20`` (pretrained on 32 kb windows
  of chr20's training stretch) fine-tuned in full;
* ``hyena-1k``: the same recipe from ``tiny-1k-chr20`` as it was pretrained (1 kb windows,
  ``l_max`` 1026), so at 1k context only: what the long-context pretraining costs or adds there.

Each fine-tuning run is a process writing ``OUT/<context>/<method>/seed<k>/metrics.json`` and is
not repeated once that exists. The table (``TABLE/context_curve.md`` / ``.json``) and the plot
(``context_curve.png``) gather every seed found in ``OUT`` for the contexts and methods asked, so
a long context can be run with fewer seeds (the table gives n per cell).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tasks import ROOT, cached_baseline, finetune_process  # noqa: E402

TASK = "genic_chr20"
RECIPE = ROOT / "configs/tasks" / f"{TASK}.yaml"
CONTEXTS = (1024, 4096, 16384, 32768)
BASELINES = ("kmer", "markov")
METHODS = ("kmer", "markov", "cnn", "cnn-max", "hyena-1k", "hyena")
OVERRIDES = {
    "cnn": ["--model.name_or_path", "cnn", "--model.overrides", "{}", "--head.kind", "linear"],
    "cnn-max": ["--model.name_or_path", "cnn", "--model.overrides", '{"readout": "max"}', "--head.kind", "linear"],
    "hyena-1k": ["--model.name_or_path", "tiny-1k-chr20", "--model.overrides", "{}"],
    "hyena": [],
}  # the recipe starts from tiny-32k-chr20 with l_max 32770
METRICS = ("accuracy", "mcc", "auroc")
LONGEST = {"hyena-1k": 1024}
"""Methods that take windows up to some length only."""


def reader_options(context: int) -> dict:
    """The recipe's reader options with the window set to ``context`` bases."""
    import yaml

    recipe = yaml.safe_load(RECIPE.read_text())
    return {**recipe["data"]["reader"], "length": context}


def baseline(method: str, context: int, out: Path) -> dict:
    """A k-mer or Markov baseline on windows of ``context`` bases (cached)."""
    from hyenadna.data.datamodules import LabelledDataModule

    data = LabelledDataModule(ROOT / "data/tasks" / f"{TASK}.bed", reader=reader_options(context))
    return cached_baseline(method, data, out / str(context) / method)


def fine_tuned(method: str, context: int, seed: int, out: Path) -> dict:
    """One fine-tuning run of the recipe at ``context`` (cached)."""
    options = ["--data.reader.length", str(context), *OVERRIDES[method]]
    folder = out / str(context) / method / f"seed{seed}"
    return finetune_process(RECIPE, options, seed, folder, label=f"{TASK} {context} {method} seed {seed}")


def gather(out: Path, contexts: list[int], methods: list[str]) -> dict:
    """Mean, sd and n over the seeds found in ``out``, per context and method."""
    summary: dict = {}
    for context in contexts:
        for method in methods:
            folder = out / str(context) / method
            files = [folder / "metrics.json"] if method in BASELINES else sorted(folder.glob("seed*/metrics.json"))
            runs = [json.loads(f.read_text()) for f in files if f.is_file()]
            if not runs:
                continue
            cell: dict = {"n": len(runs), "train_seconds": statistics.fmean(r.get("train_seconds", 0.0) for r in runs)}
            for metric in METRICS:
                values = [r["test"][metric] for r in runs]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cell[metric] = {"mean": statistics.fmean(values), "sd": sd}
            summary.setdefault(str(context), {})[method] = cell
    return summary


def table_of(summary: dict, methods: list[str]) -> str:
    """Markdown: a row per context, a column per method, mean ± sd (n) of test accuracy and MCC."""
    lines = []
    for metric in ("accuracy", "mcc"):
        lines += [f"**test {metric}**, {TASK} (mean ± sd over seeds; n = seeds)", "",
                  "| context | " + " | ".join(methods) + " |", "|---:" * (len(methods) + 1) + "|"]  # fmt: skip
        for context, cells in summary.items():
            row = []
            for m in methods:
                c = cells.get(m)
                row.append(f"{c[metric]['mean']:.3f} ± {c[metric]['sd']:.3f} ({c['n']})" if c else "")
            lines.append(f"| {int(context):,} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, methods: list[str], path: Path) -> None:
    """Test accuracy against context (log scale), one line per method, sd as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    for method in methods:
        points = [(int(c), cells[method]) for c, cells in summary.items() if method in cells]
        if points:
            x = [c for c, _ in points]
            ax.errorbar(x, [p["accuracy"]["mean"] for _, p in points], yerr=[p["accuracy"]["sd"] for _, p in points],
                        marker="o", capsize=3, label=method)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(c) for c in summary], [f"{int(c) // 1024}k" for c in summary])
    ax.set_xlabel("context (bases around the position)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{TASK}: gene body or intergenic (chr20 test region)")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contexts", nargs="+", type=int, default=list(CONTEXTS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default=str(ROOT / "runs/context_curve"), help="run folders (resumable)")
    parser.add_argument("--table", default=str(ROOT / "benchmarks/results/tasks"), help="where the table and plot go")
    parser.add_argument("--table-contexts", nargs="+", type=int, default=list(CONTEXTS),
                        help="contexts the table and plot gather (runs made by earlier calls included)")  # fmt: skip
    args = parser.parse_args()
    longest = json.loads((ROOT / "data/tasks" / f"{TASK}.json").read_text())["parameters"]["max_context"]
    if max(args.contexts + args.table_contexts) > longest:
        parser.error(f"{TASK}'s positions keep only {longest:,} bases around them inside their split; "
                     "a longer window would read bases of another split")  # fmt: skip
    out = Path(args.out)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    for context in args.contexts:
        for method in args.methods:
            if method in BASELINES:
                baseline(method, context, out)
            elif context <= LONGEST.get(method, context):
                for seed in args.seeds:
                    fine_tuned(method, context, seed, out)
    shown = [m for m in METHODS if m in args.methods or any((out / str(c) / m).exists() for c in args.table_contexts)]
    summary = gather(out, sorted(set(args.table_contexts)), shown)
    table = table_of(summary, shown)
    folder = Path(args.table)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "context_curve.json").write_text(json.dumps({"task": TASK, "summary": summary}, indent=2) + "\n")
    (folder / "context_curve.md").write_text(table + "\n")
    plot(summary, shown, folder / "context_curve.png")
    print(table)


if __name__ == "__main__":
    main()
