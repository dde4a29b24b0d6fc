"""Adopt a finished ``hyenadna tune`` search into the task suite.

    python benchmarks/adopt_tune.py runs/tune/bacteria4 --task bacteria4 --method hyena-tuned \\
        --command "hyenadna tune --config configs/tasks/bacteria4.yaml --config configs/search/bacteria4.yaml ..."

writes the search's chosen recipe (its ``best_recipe.yaml``) as the suite's tuned recipe,
``configs/tasks/tuned/<prefix><task>.yaml``, with a header saying which trial it is, how it was
found and by what command, and its output pointed at the suite's run folder; and it copies the
search's final runs' ``metrics.json`` into ``runs/tasks/<task>/<method>/seed<k>/``, the suite's
cache. The final runs are the command the suite would run itself (``hyenadna finetune --config
RECIPE --seed k``), so ``python benchmarks/tasks.py --methods <method> --update`` then tables them
without training them again; delete the cache to have the suite retrain them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from hyenadna.io.atomic import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import NEW_TASKS, ROOT, TASKS, TUNED


def budget(search_options: dict) -> str:
    """A trial's budget as the search set it: training bases, minutes, or both."""
    parts = []
    if search_options.get("trial_tokens"):
        parts.append(f"{search_options['trial_tokens'] / 1e6:.1f} M training bases")
    if search_options.get("trial_minutes"):
        parts.append(f"{search_options['trial_minutes']} minutes")
    return " or ".join(parts) or "the recipe's own limits"


def final_metrics(search: Path, summary: dict) -> dict[int, Path]:
    """Each final seed's ``metrics.json``, found from the search folder (the summary's own path
    is relative to wherever the search ran); refused whole if any is missing."""
    final = summary.get("final")
    if not final:
        raise SystemExit(f"{search}: the search has no final runs yet (summary.json has no 'final')")
    folder = search / "final" / Path(final["runs"]).name
    found = {seed: folder / f"seed{seed}" / "metrics.json" for seed in final["seeds"]}
    missing = [str(path) for path in found.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"final runs that did not finish (nothing written): {', '.join(missing)}")
    return found


def tuned_recipe(search: Path, summary: dict, task: str, method: str, command: str) -> str:
    """The chosen recipe's text: a header, then ``best_recipe.yaml`` with the suite's output."""
    recipe = yaml.safe_load((search / "best_recipe.yaml").read_text())
    run = yaml.safe_load((search / "config.yaml").read_text())
    search_options = run["search"]
    chosen = summary.get("chosen_trial", summary["best_trial"]["number"])
    trials = summary["study"]["trials"]
    rows = (line.split("\t") for line in (search / "trials.tsv").read_text().splitlines()[1:])
    value = next(float(row[2]) for row in rows if int(row[0]) == chosen)
    each = f" a fold, {search_options['folds']} folds a trial" if search_options.get("folds") else " each"
    judged = summary.get("judged_on", "validation split")
    judged = (
        "the validation split only"
        if judged == "validation split"
        else f"{judged} of the training and validation records"
    )
    header = [
        f"# The {task} recipe chosen by hyenadna tune on {judged} (trial {chosen}, {summary['monitor']} {value:.4f}):",
        f"#   {command}",
        f"# {sum(trials.values())} trials ({', '.join(f'{n} {state}' for state, n in trials.items())}) of "
        f"{budget(search_options)}{each}, {search_options['pruner']} pruning, sampler seed {run['seed']}.",
    ]
    confirmation = summary.get("confirmation")
    if confirmation:
        means = ", ".join(f"trial {t} {c['mean']:.4f} ± {c['sd']:.4f}" for t, c in confirmation["trials"].items())
        header.append(f"# Confirmed on seeds {confirmation['seeds']} (validation mean ± sd): {means}.")
    header.append(f"# benchmarks/tasks.py runs it as {method}; the search is in benchmarks/results/tasks/README.md.")
    recipe["output"] = f"runs/tasks/{task}/{method}"
    return "\n".join(header) + "\n" + yaml.safe_dump(recipe, sort_keys=False)


def adopt(search: Path, task: str, method: str, command: str, runs: Path, recipes: Path) -> list[Path]:
    """Write the tuned recipe into ``recipes`` and copy the final runs' metrics into ``runs``;
    returns what was written."""
    summary = json.loads((search / "summary.json").read_text())
    found = final_metrics(search, summary)
    target = recipes / f"{TUNED[method]}{task}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, tuned_recipe(search, summary, task, method, command))
    written = [target]
    for seed, metrics in found.items():
        cache = runs / task / method / f"seed{seed}" / "metrics.json"
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, metrics.read_text())
        written.append(cache)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("search", type=Path, help="the tune's output folder")
    parser.add_argument("--task", required=True, choices=TASKS + NEW_TASKS)
    parser.add_argument("--method", required=True, choices=sorted(TUNED))
    parser.add_argument("--command", required=True, help="the tune command, for the recipe's header")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs/tasks", help="the suite's run folders")
    parser.add_argument("--recipes", type=Path, default=ROOT / "configs/tasks/tuned", help="the tuned recipes")
    args = parser.parse_args()
    for path in adopt(args.search, args.task, args.method, args.command, args.runs, args.recipes):
        print(path)


if __name__ == "__main__":
    main()
