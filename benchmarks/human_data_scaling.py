"""What more human sequence would buy: the held-out lead over the best Markov chain against the
number of human bases a model trains on, at a fixed token budget.

    python benchmarks/human_data_scaling.py --fractions 0.0625 0.25 0.5 1   # make bench-data, about two hours
    python benchmarks/human_data_scaling.py --fractions 0.5 1 --steps 1000 --precision 32-true

The project's human corpus is one chromosome (vt-examples' chr20, 56.7 M training bases); the
bundled models' lead over the best chain stopped growing on it (their model cards). This asks
whether the lead is held back by that data, as a GPU alone could not fix. Each point pretrains
``tiny-1k`` with the recipe of ``tiny-1k-chr20`` (``configs/pretrain_tiny1k_chr20.yaml``: the same
steps, batch, schedule and seed) on the first ``fraction`` of the training stretch only, and then
scores it and Markov chains fitted on the *same* bases on the same held-out tail (the last 10% of
chr20, exactly the bundled models' held-out windows). The stretch between is left unused: it is
the run's ``val`` split, and validation is off, so nothing there reaches training.

Both scorers gain from data; the lead (chain minus model) says which gains more. The fractions
are prefixes (the corpus splits a contig into train, val and test in that order), so a longer one
also reaches nearer the tail: part of a gain may be regional likeness rather than amount. The
chain's grid is the heldout command's upper orders (8-12) and betas 32-512, best chosen on the
tail itself, as ``hyenadna heldout`` does. Runs go to ``OUT/f<fraction>/`` and are not repeated once their
``heldout.json`` exists; the table goes to ``benchmarks/results/human_data_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hyenadna.data.corpus import Corpus, GenomeSource  # noqa: E402
from hyenadna.io.atomic import atomic_write_text  # noqa: E402
from hyenadna.pipelines.heldout import run_heldout  # noqa: E402

RECIPE = ROOT / "configs/pretrain_tiny1k_chr20.yaml"
HELD_OUT = 0.1
"""The tail of chr20 held out, as in the recipe (there it is the ``val`` split, here ``test``)."""


def recipe_for(fraction: float, steps: int) -> dict:
    """The tiny-1k-chr20 recipe trained on the first ``fraction`` of the training stretch: the
    rest of it becomes an unused ``val`` split, and the tail becomes ``test``."""
    recipe = yaml.safe_load(RECIPE.read_text())
    genome = recipe["data"]["genomes"][0]
    genome.pop("val_fraction")
    genome["test_fraction"] = HELD_OUT
    unused = round((1 - HELD_OUT) * (1 - fraction), 6)
    if unused > 0:
        genome["val_fraction"] = unused
    recipe["trainer"].update(max_steps=steps, val_every_n_steps=0, limit_val_batches=0, checkpoint_every_n_steps=0)
    recipe["trainer"]["progress_bar"] = False
    return recipe


def run_point(fraction: float, steps: int, precision: str, out: Path, orders: list[int], betas: list[float]) -> dict:
    """Pretrain (unless done with these settings) and score one fraction: the heldout result."""
    run = point_folder(out, fraction)
    done = run / "heldout.json"
    if done.is_file():
        result = json.loads(done.read_text())
        if (result["steps"], result["precision"]) != (steps, precision):
            raise SystemExit(f"{done} was run with {result['steps']} steps in {result['precision']}, not {steps} in "
                             f"{precision}: give another --out, or remove {run} to rerun it")  # fmt: skip
        return result
    run.mkdir(parents=True, exist_ok=True)
    config = run / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe_for(fraction, steps), sort_keys=False))
    command = [sys.executable, str(ROOT / "cli.py"), "pretrain", "--config", str(config),
               "--trainer.precision", precision, "--output", str(run / "pretrain"), "--overwrite"]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if finished.returncode:
        raise SystemExit(f"pretraining at fraction {fraction} failed:\n{finished.stderr[-3000:]}")
    result = run_heldout(str(run / "pretrain"), str(run / "pretrain" / "model"), "test", orders, betas)
    result.update(fraction=fraction, steps=steps, precision=precision)
    atomic_write_text(done, json.dumps(result, indent=1))
    return result


def table(results: list[dict]) -> str:
    """One row a fraction: training bases, passes over them, the model, the best chain, the lead."""
    lines = [
        "| training bases | passes | model bits/base | best chain | chain bits/base | lead |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        bases = r["train_bases"]
        chain = r["best_markov"]
        lines.append(
            f"| {bases / 1e6:.1f} M ({r['fraction']:g}) | {r['tokens'] / bases:.1f} "
            f"| {r['model']['bits_per_base']:.4f} "
            f"| order {chain['order']}, beta {chain['beta']:g} | {chain['bits_per_base']:.4f} "
            f"| {-r['model_minus_best_markov']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.0625, 0.25, 0.5, 1.0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--orders", type=int, nargs="+", default=[8, 9, 10, 11, 12])
    parser.add_argument("--betas", type=float, nargs="+", default=[32.0, 128.0, 512.0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs/human_data_scaling")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks/results/human_data_scaling")
    args = parser.parse_args()
    if any(not 0 < f <= 1 for f in args.fractions):
        parser.error(f"--fractions must lie in (0, 1], got {args.fractions}")
    recipe = yaml.safe_load(RECIPE.read_text())
    tokens = args.steps * recipe["data"]["batch_size"] * recipe["data"]["length"]
    results = []
    for fraction in sorted(args.fractions):
        result = run_point(fraction, args.steps, args.precision, args.out, args.orders, args.betas)
        run = point_folder(args.out, fraction)
        result["tokens"] = tokens
        result["run_config"] = shown(Path(result["run_config"]))
        result["model"]["name"] = shown(Path(result["model"]["name"]))
        result["train_bases"] = training_bases(corpus_of(run / "recipe.yaml"))
        summary = json.loads((run / "pretrain" / "summary.json").read_text())
        result["pretrain"] = {"seconds": summary["seconds"], "tokens_per_s": summary["throughput"].get("tokens_per_s")}
        results.append(result)
        print(table(results).splitlines()[-1], flush=True)
    text = table(results)
    print(text)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.table.with_suffix(".json"), json.dumps(results, indent=1))
    atomic_write_text(args.table.with_suffix(".md"), text + "\n")


def point_folder(out: Path, fraction: float) -> Path:
    """The run folder of one fraction: its recipe, pretraining run and heldout.json."""
    return out / f"f{fraction:g}"


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies in it (the table names no home folder)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def corpus_of(recipe: Path) -> Corpus:
    """The pretraining corpus a recipe file names."""
    return Corpus([GenomeSource(**g) for g in yaml.safe_load(recipe.read_text())["data"]["genomes"]])


def training_bases(corpus: Corpus) -> int:
    """Bases in the training intervals of ``corpus`` (N included, as the passes count them)."""
    return sum(iv.end - iv.start for iv in corpus.intervals("train"))


if __name__ == "__main__":
    main()
