"""The ``tune`` command: a hyper-parameter search over a fine-tuning recipe, on Optuna.

Each trial is a fine-tune of the recipe with sampled options, trained for a fixed budget of
training bases (and/or minutes) and judged by its best validation metric (or, for small data,
its mean over cross-validation folds of the training and validation records,
:mod:`hyenadna.pipelines.trials`); hopeless trials are pruned from their validation curves.
The study lives in ``OUTPUT/study.db`` (or any Optuna storage URL), so a stopped search resumes
with ``--resume`` and several processes can share it.
When the study holds its trials, the best options are written as a recipe
(``best_recipe.yaml``, a plain ``hyenadna finetune`` config), retrained on several seeds and
tested once per seed: no trial evaluates the test split.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadOptions
from hyenadna.heads.conv import pooled_length
from hyenadna.io.atomic import atomic_write_text, write_run_config
from hyenadna.pipelines.finetune import (
    FINETUNE_OPTIM,
    FinetuneRecipe,
    check_calibration,
    finetune,
    refuse_bad_inputs,
)
from hyenadna.pipelines.trials import TrialObjective, budgeted
from hyenadna.training.optim import OptimOptions
from hyenadna.training.options import (
    CNN_NAME,
    FinetuneOptions,
    LabelledData,
    ModelOptions,
    SearchOptions,
    TrainerOptions,
)
from hyenadna.training.prepare import initial_model, labelled_data_module
from hyenadna.training.search_space import (
    Dimension,
    check_space,
    options_of,
    read_search_space,
    stored_params,
    with_params,
)
from hyenadna.training.study import (
    StopWhenAllStarted,
    check_storage,
    default_storage,
    hide_password,
    open_study,
    started_trials,
    wait_for_running,
)
from hyenadna.training.task_module import validation_monitor
from hyenadna.training.trainer import start_run_folder


def run_tune(
    data: LabelledData,
    search: SearchOptions = SearchOptions(),  # noqa: B008 (frozen-in defaults, shown by --print_config; never mutated)
    model: ModelOptions = ModelOptions(),  # noqa: B008
    head: HeadOptions = HeadOptions(),  # noqa: B008
    tuning: FinetuneOptions = FinetuneOptions(),  # noqa: B008
    optim: OptimOptions = FINETUNE_OPTIM,
    trainer: TrainerOptions = TrainerOptions(),  # noqa: B008
    output: str = "runs/tune",
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
) -> dict:
    """Search fine-tuning options on the validation split; retrain the best on several seeds.

    Writes output/study.db (the Optuna study), trials/ (each trial's logs and config),
    trials.tsv, best_recipe.yaml, final/ (the retrained runs) and summary.json; returns the summary.

    Args:
        data: labelled files (trials train and validate; only the final runs are tested).
        search: the search space, the trial budget, the sampler and pruner, the study's storage,
            and the seeds of the final retraining.
        model: the backbone to start from (the recipe's; the space may vary it).
        head: the task head (the recipe's; the space may vary it).
        tuning: frozen or full fine-tuning, early stopping, baselines of the final runs.
        optim: AdamW and schedule (the recipe's; the space varies the learning rate and more).
        trainer: devices and precision; its step and epoch limits bound the final runs.
        output: run folder.
        resume: continue the study in output (finished trials are kept; finished final runs too).
        overwrite: replace an earlier tuning run in output.
        seed: seed of the sampler and of every trial's initialisation and shuffling.
    """
    out = refuse_bad_inputs(data, model, output, overwrite, seed, command="tune")
    if search.confirm and seed in search.confirm_seeds:
        raise HyenaDNAError(f"--search.confirm_seeds {search.confirm_seeds} holds the search's own --seed {seed}: "
                            "its run is the first of every confirmed trial")  # fmt: skip
    base = FinetuneRecipe(data, model, head, tuning, optim, one_device(trainer))
    dimensions = read_search_space(search.space)
    enqueue = check_space(base, dimensions, search.enqueue)
    check_models(base, dimensions, seed)
    sizes, trial_sizes, monitor = probe_data(base, seed, search.folds)
    check_conv_depth(base, dimensions, int(sizes["longest"]))
    storage = search.storage or default_storage(out)
    check_storage(storage)
    search = replace(search, enqueue=enqueue)
    queued = replace(search, enqueue=[stored_params(dimensions, point) for point in enqueue])  # as Optuna holds them
    study_of = partial(open_study, queued, storage, monitor[1], seed, resume, overwrite)
    resumed = resume and not search.storage and (out / "study.db").is_file()
    external = study_of() if search.storage or resumed else None  # refused before anything is written
    start_run_folder(out, resume, overwrite, vars(base) | {"search": search, "output": output, "seed": seed})
    study = external or study_of()
    try:
        objective = TrialObjective(base, dimensions, search, trial_sizes, monitor[0], out, seed)
        search_until_done(study, objective, search)
    finally:  # also for a stopped or failed search: the trials so far
        write_trials_table(study, out / "trials.tsv")
    summary = study_summary(study, search, storage, monitor[0], dimensions)
    if search.final:
        scores = None
        if search.confirm:
            confirmed = confirmed_scores(study, objective, search)
            summary["confirmation"] = {"seeds": [seed, *search.confirm_seeds], "trials": confirmed}
            scores = {number: c["mean"] for number, c in confirmed.items()}
        chosen = chosen_trial(study, search.min_gain, scores)
        summary["chosen_trial"] = chosen.number
        best = with_params(base, options_of(dimensions, chosen.params))
        if search.final_tokens:
            best = budgeted(best, search.final_tokens, search.val_checks, sizes)
        summary["final"] = retrain(best, chosen, search.seeds, out, monitor[0], summary["judged_on"])
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def one_device(trainer: TrainerOptions) -> TrainerOptions:
    """``trainer`` on one device (``auto``: one): each trial and final run is one process, and
    more devices serve as more processes sharing the study."""
    devices = trainer.devices
    several = (isinstance(devices, list) and len(devices) > 1) or (isinstance(devices, int) and devices > 1)
    if several or trainer.num_nodes > 1 or (isinstance(devices, str) and devices not in ("auto", "1")):
        raise HyenaDNAError(
            f"tune trains each trial on one device, got --trainer.devices {devices!r} and --trainer.num_nodes "
            f"{trainer.num_nodes}; to use several, run one tune process per device sharing the study (say "
            "CUDA_VISIBLE_DEVICES=k hyenadna tune ... --resume --search.final false), then one with --search.final true"
        )
    one = devices if isinstance(devices, list) else 1  # a chosen device ([3]) stays the one chosen
    return replace(trainer, devices=one, strategy="auto" if trainer.strategy in ("ddp", "fsdp") else trainer.strategy)


def check_models(recipe: FinetuneRecipe, dimensions: list[Dimension], seed: int) -> None:
    """Build the model at each end of every ``model.*`` dimension, so that a shape the model
    refuses (``model.overrides.d_model: [64, -8]``) is refused before the first trial."""
    for dim in dimensions:
        if dim.name.startswith("model."):
            for value in dim.extremes():
                try:
                    options = with_params(recipe, {dim.name: value}).model
                    if options.name_or_path != CNN_NAME:
                        initial_model(options, seed)
                except (HyenaDNAError, TypeError) as exc:
                    raise HyenaDNAError(f"search space {dim.name}: {exc} (value {value!r})") from None


def probe_data(
    recipe: FinetuneRecipe, seed: int, folds: int = 0
) -> tuple[dict[str, float], dict[str, float], tuple[str, str]]:
    """The training split's size and mean length (the final runs' budget unit), the same for the
    trials (with ``folds``, the first fold's training records), and the validation metric trials
    are judged by with its direction. Refused without a validation split (the final runs stop
    on it), or with a fold some label of validation or test is missing from, naming the fold."""
    l_max = None if recipe.model.name_or_path == CNN_NAME else initial_model(recipe.model, seed).config.l_max
    datamodule = labelled_data_module(recipe.data, seed, l_max)
    if "val" not in datamodule.split_sizes():
        raise HyenaDNAError("tuning judges trials on a validation split, and the data has none")
    if recipe.tuning.calibrate:  # the final runs calibrate: refused now, not after the search
        check_calibration(datamodule)
    monitor = validation_monitor(recipe.tuning, datamodule.vocab.task, True)
    assert monitor is not None
    sizes = train_sizes(datamodule) | {"longest": datamodule.longest_sequence()}
    trial_sizes = sizes
    for k in range(folds):  # every fold builds (its label vocabulary holds every label it meets)
        try:
            fold = labelled_data_module(recipe.data, seed, l_max, fold=(k, folds))
        except HyenaDNAError as exc:
            raise HyenaDNAError(f"--search.folds {folds}, fold {k}: {exc}") from None
        if k == 0:
            trial_sizes = train_sizes(fold)
    return sizes, trial_sizes, monitor


def check_conv_depth(recipe: FinetuneRecipe, dimensions: list[Dimension], longest: int) -> None:
    """Refuse conv-head widths with more pooling blocks than the window has halvings, before the
    first trial: every trial drawing them would fail as its model is built. The window is what a
    position-reading head reads, the longest sequence (``longest`` bases) cut at
    ``data.max_length``; where that is searched, at the shortest it can be."""
    by_name = {d.name: d for d in dimensions}
    kinds = by_name["head.kind"].extremes() if "head.kind" in by_name else [recipe.head.kind]
    if "conv" not in kinds:
        return
    cuts = by_name["data.max_length"].extremes() if "data.max_length" in by_name else [recipe.data.max_length]
    window = min(min(longest, cut or longest) for cut in cuts)
    searched = "head.conv_channels" in by_name
    for widths in by_name["head.conv_channels"].extremes() if searched else [recipe.head.conv_channels]:
        if pooled_length(window, len(widths)) < 1:
            where = "search space head.conv_channels:" if searched else "--head.conv_channels"
            raise HyenaDNAError(
                f"{where} {widths} has {len(widths)} pooling blocks, which pool the data's {window}-token "
                "window to nothing; use fewer"
            )


def train_sizes(datamodule) -> dict[str, float]:
    """The training split's record count and mean length in bases."""
    train = datamodule.records("train")
    return {"train": len(train), "mean_length": sum(len(r.sequence) for r in train) / len(train)}


def confirmed_scores(study, objective: TrialObjective, search: SearchOptions) -> dict[int, dict[str, Any]]:
    """The best ``search.confirm`` complete trials, and the first enqueued one, each rerun on
    ``search.confirm_seeds``: per trial its validation values (the search's own run first), mean
    and sd. One run's validation score carries the seed's noise; the mean of several does less."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
    ranked = sorted(complete, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")
    candidates = ranked[: search.confirm]
    enqueued = [t for t in complete if t.system_attrs.get("fixed_params") is not None]
    if enqueued and enqueued[0] not in candidates:
        candidates.append(enqueued[0])
    scores = {}
    for trial in candidates:
        values = [trial.value] + [objective.rerun(trial, seed) for seed in search.confirm_seeds]
        scores[trial.number] = {"values": values, "mean": statistics.fmean(values), "sd": statistics.stdev(values)}
    return scores


def search_until_done(study, objective: TrialObjective, search: SearchOptions) -> None:
    """Run trials until the study holds ``search.trials`` finished ones (counting every process
    sharing it, and the trials they are still running) or the timeout passes; with
    ``search.final``, wait for the trials other processes are running, so that the best of all is
    retrained. Refused when no trial could finish."""
    import optuna
    from optuna.trial import TrialState

    failures = (HyenaDNAError, torch.OutOfMemoryError)  # a trial's own: recorded, and the search goes on
    optuna.storages.fail_stale_trials(study)  # a trial of a launch that died, past its grace period
    deadline = time.monotonic() + search.timeout_minutes * 60 if search.timeout_minutes else None
    while True:
        remaining = search.trials - started_trials(study)
        timeout = None if deadline is None else deadline - time.monotonic()
        if remaining > 0 and (timeout is None or timeout > 0):
            optuna.logging.set_verbosity(optuna.logging.INFO)
            study.optimize(objective, n_trials=remaining, timeout=timeout, catch=failures,
                           callbacks=[StopWhenAllStarted(search.trials)])  # fmt: skip
        # the others' trials, waited for; any that failed (or whose process died) leave room for more
        if not search.final or not wait_for_running(study, say=lambda line: print(line, file=sys.stderr)):
            break
    if not study.get_trials(deepcopy=False, states=[TrialState.COMPLETE]):
        errors = [t.user_attrs["error"] for t in study.get_trials(deepcopy=False) if "error" in t.user_attrs]
        reason = f": {errors[0]}" if errors else ""
        raise HyenaDNAError(f"no trial of the study {search.study_name} finished{reason}")


def chosen_trial(study, min_gain: float, scores: dict[int, float] | None = None):
    """The trial to retrain: the best by ``scores`` (trial number -> validation score; default:
    every complete trial's own), unless the first enqueued trial (the recipe the user came with)
    is scored and the best beats it by no more than ``min_gain``."""
    from optuna.trial import TrialState

    complete = {t.number: t for t in study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])}
    scores = scores or {number: t.value for number, t in complete.items()}
    sign = 1 if study.direction.name == "MAXIMIZE" else -1
    best = max(sorted(scores), key=lambda number: sign * scores[number])  # the earliest of equals
    enqueued = [n for n in sorted(scores) if complete[n].system_attrs.get("fixed_params") is not None]
    if not min_gain or not enqueued or enqueued[0] == best:
        return complete[best]
    first = enqueued[0]  # trials are numbered in the order they were made
    return complete[best] if sign * (scores[best] - scores[first]) > min_gain else complete[first]


def write_trials_table(study, path: Path) -> None:
    """Every trial as a TSV row: number, state, validation value, steps, seconds, options."""
    names = sorted({name for t in study.trials for name in t.params})
    folded = any("fold_values" in t.user_attrs for t in study.trials)
    header = ["trial", "state", "value", *(["fold_values"] if folded else []), "steps", "train_seconds"]
    lines = ["\t".join([*header, *names, "error"])]
    for t in study.trials:
        value = "" if t.value is None else f"{t.value:.6g}"
        folds = [",".join(f"{v:.6g}" for v in t.user_attrs.get("fold_values", []) if v is not None)] if folded else []
        row = [str(t.number), t.state.name, value, *folds, str(t.user_attrs.get("steps", "")),
               str(t.user_attrs.get("train_seconds", "")), *(str(t.params.get(n, "")) for n in names),
               " ".join(str(t.user_attrs.get("error", "")).split())]  # fmt: skip
        lines.append("\t".join(row))
    atomic_write_text(path, "\n".join(lines) + "\n")


def study_summary(study, search: SearchOptions, storage: str, monitor: str,
                  dimensions: list[Dimension]) -> dict[str, Any]:  # fmt: skip
    """The study's counts by state and its best trial (of those finished: a launch that does not
    retrain has not waited for the trials other processes are still running; they are counted,
    and said)."""
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    if counts.get("running"):
        print(f"hyenadna tune: {counts['running']} trials still running elsewhere; the best of those finished "
              "is the one retrained", file=sys.stderr)  # fmt: skip
    best = study.best_trial
    return {
        "study": {"name": search.study_name, "storage": hide_password(storage), "trials": counts},
        "monitor": monitor,
        "judged_on": f"{search.folds}-fold cross-validation" if search.folds else "validation split",
        "best_trial": {
            "number": best.number,
            "value": best.value,
            "params": options_of(dimensions, best.params),
            "steps": best.user_attrs.get("steps"),
        },
    }


def retrain(recipe: FinetuneRecipe, trial, seeds: list[int], out: Path, monitor: str,
            judged_on: str = "validation split") -> dict[str, Any]:  # fmt: skip
    """The best recipe written to ``best_recipe.yaml`` (its own run folder ``OUTPUT/best``) and
    fine-tuned once per seed into ``final/trialNNNN/seedK`` (a finished run is reused when
    resuming), each tested once: the test metrics as mean and sd over seeds, the k-mer baseline
    of the first seed beside them, and the CNN baseline's mean and sd where the recipe asks."""
    folder = out / "final" / f"trial{trial.number:04d}"
    header = (f"# The recipe hyenadna tune chose: trial {trial.number}, {monitor} {trial.value:.4f} on the "
              f"{judged_on}.\n# hyenadna finetune --config {out / 'best_recipe.yaml'}\n")  # fmt: skip
    write_run_config(out, vars(recipe) | {"output": str(out / "best"), "seed": seeds[0]}, name="best_recipe.yaml",
                     header=header)  # fmt: skip
    runs: list[dict[str, Any]] = []
    for i, seed in enumerate(seeds):
        run = folder / f"seed{seed}"
        if (run / "metrics.json").is_file():
            runs.append(json.loads((run / "metrics.json").read_text()))
            continue
        tuning = replace(recipe.tuning, baseline=recipe.tuning.baseline and i == 0)
        runs.append(finetune(replace(recipe, tuning=tuning), run, seed, overwrite=True))
    final: dict[str, Any] = {"recipe": str(out / "best_recipe.yaml"), "seeds": seeds, "runs": str(folder),
                             "validation": mean_sd([r["validation"] for r in runs])}  # fmt: skip
    for key in ("test", "test_calibrated"):
        if all(key in r for r in runs):
            final[key] = mean_sd([r[key] for r in runs])
    if "kmer_baseline" in runs[0]:
        final["kmer_baseline"] = runs[0]["kmer_baseline"]
    if all("cnn_baseline" in r for r in runs):
        final["cnn_baseline"] = mean_sd([r["cnn_baseline"] for r in runs])
    return final


def mean_sd(results: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Each metric's mean, sample sd (0 for one run) and values over ``results``."""
    summary = {}
    for name in results[0]:
        values = [r[name] for r in results if isinstance(r.get(name), (int, float))]
        if len(values) == len(results):
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[name] = {"mean": statistics.fmean(values), "sd": sd, "values": values}
    return summary


def tune_table(summary: dict[str, Any]) -> str:
    """The final runs' test metrics (mean ± sd over seeds) beside the baselines, as text."""
    best = summary["best_trial"]
    judged = summary.get("judged_on", "validation split")
    lines = [f"best trial {best['number']}: {summary['monitor']} {best['value']:.4f} ({judged})"]
    confirmation = summary.get("confirmation")
    if confirmation:
        lines.append(f"confirmed on seeds {', '.join(map(str, confirmation['seeds']))} (validation mean ± sd):")
        for number, c in confirmation["trials"].items():
            chosen = " <- retrained" if int(number) == summary.get("chosen_trial") else ""
            lines.append(f"  trial {number}: {c['mean']:.4f} ± {c['sd']:.4f}{chosen}")
    final = summary.get("final", {})
    if "test" in final:
        kmer, cnn = final.get("kmer_baseline", {}), final.get("cnn_baseline")
        tuned = f"tuned ({len(final['seeds'])} seeds)"
        header = f"{'test metric':<16} {tuned:>20}"
        lines.append(header + (f" {'CNN':>20}" if cnn else "") + f" {'k-mer LR':>10}")
        for name, value in final["test"].items():
            row = f"{name:<16} {value['mean']:>11.4f} ± {value['sd']:.4f}"
            if cnn:
                row += f" {cnn[name]['mean']:>11.4f} ± {cnn[name]['sd']:.4f}" if name in cnn else f" {'':>20}"
            lines.append(row + (f" {kmer[name]:>10.4f}" if isinstance(kmer.get(name), float) else f" {'':>10}"))
    if final.get("test_calibrated"):
        shown = ", ".join(f"{n} {v['mean']:.4f} ± {v['sd']:.4f}" for n, v in final["test_calibrated"].items())
        lines.append(f"calibrated on validation, test: {shown}")
    return "\n".join(lines)
