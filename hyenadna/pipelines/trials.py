"""One trial of a ``hyenadna tune`` search: a recipe's options fine-tuned at the trial budget and
scored on validation only, on the data's validation split or by cross-validation folds."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write_text
from hyenadna.pipelines.finetune import FinetuneRecipe, finetune
from hyenadna.training.options import SearchOptions
from hyenadna.training.search_space import Dimension, options_of, with_params
from hyenadna.training.study import short


def budgeted(recipe: FinetuneRecipe, tokens: int | None, val_checks: int, sizes: dict[str, float]) -> FinetuneRecipe:
    """``recipe`` trained for ``tokens`` training bases (its schedule, warm-up included,
    spanning them) and validated ``val_checks`` times; without tokens, its own step limits and
    ``val_checks`` validations an epoch (a trial's ``max_time`` then caps it). Steps are optimiser steps
    (``accumulate_grad_batches`` batches each); validation intervals count batches."""
    batch, accumulate = recipe.data.batch_size, recipe.trainer.accumulate_grad_batches
    epoch_batches = max(1, math.ceil(sizes["train"] / batch))
    trainer = recipe.trainer
    if tokens:
        steps = max(1, math.ceil(tokens / (batch * accumulate * sizes["mean_length"])))
        every = max(1, steps * accumulate // val_checks)
        trainer = replace(trainer, max_steps=steps, max_epochs=-1, val_every_n_steps=every)
    elif not trainer.val_every_n_steps:
        trainer = replace(trainer, val_every_n_steps=max(1, epoch_batches // val_checks))
    trainer = replace(trainer, checkpoint_every_n_steps=0,
                      log_every_n_steps=min(trainer.log_every_n_steps, trainer.val_every_n_steps))  # fmt: skip
    return replace(recipe, trainer=trainer)


class TrialObjective:
    """One trial: the recipe with the trial's options, fine-tuned for the trial budget into
    ``trials/NNNN`` (with folds, ``trials/NNNN/foldK`` for each; checkpoints deleted after),
    judged by its best validation metric (with folds, the mean of each fold's best)."""

    def __init__(self, base: FinetuneRecipe, dimensions: list[Dimension], search: SearchOptions,
                 sizes: dict[str, float], monitor: str, out: Path, seed: int) -> None:  # fmt: skip
        self.base, self.dimensions, self.search, self.sizes = base, dimensions, search, sizes
        self.monitor, self.out, self.seed = monitor, out, seed

    def __call__(self, trial) -> float:
        from hyenadna.training.pruning import CheckPruning

        params = {dim.name: dim.suggest(trial) for dim in self.dimensions}
        folder = self.out / "trials" / f"{trial.number:04d}"
        try:
            values, results = self.score(params, folder, self.seed, (CheckPruning(trial, self.monitor),))
        except HyenaDNAError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except torch.OutOfMemoryError as exc:  # a shape or batch too large for the device: this trial fails
            trial.set_user_attr("error", f"out of memory: {short(exc)}")
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the study records the trial as failed
            trial.set_user_attr("error", f"stopped{f' by {exc}' if str(exc) else ''}")
            raise
        trial.set_user_attr("steps", sum(r["steps"] for r in results))
        trial.set_user_attr("train_seconds", round(sum(r["train_seconds"] for r in results), 1))
        if self.search.folds:
            trial.set_user_attr("fold_values", values)
        if None in values:  # the budget ended before the first validation check
            missing = values.index(None)
            where = f" of fold {missing}" if self.search.folds else ""
            steps = results[missing]["steps"]
            trial.set_user_attr("error", f"no validation check within the budget{where} ({steps} steps)")
            return math.nan  # Optuna records the trial as failed
        return statistics.fmean(values)

    def score(self, params: dict[str, Any], folder: Path, seed: int,
              callbacks: tuple = ()) -> tuple[list[float | None], list[dict[str, Any]]]:  # fmt: skip
        """The best validation metric of each run that scores ``params`` (one, or one a fold,
        ``callbacks`` on the first only: the pruner judges the first fold's curve), and the runs'
        results; a fold with no validation check within the budget ends the trial there."""
        if not self.search.folds:
            result = self.train(params, folder, seed, callbacks)
            return [result["validation"].get(self.monitor)], [result]
        values: list[float | None] = []
        results: list[dict[str, Any]] = []
        folds = self.search.folds
        for k in range(folds):
            try:
                result = self.train(params, folder / f"fold{k}", seed, callbacks if k == 0 else (), (k, folds))
            except HyenaDNAError as exc:
                raise HyenaDNAError(f"fold {k}: {exc}") from None
            results.append(result)
            values.append(result["validation"].get(self.monitor))
            if values[-1] is None:
                break
        return values, results

    def train(self, params: dict[str, Any], folder: Path, seed: int, callbacks: tuple = (),
              fold: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
        """The recipe with ``params``, fine-tuned for the trial budget into ``folder`` (its
        checkpoints deleted after), on ``fold`` where given; validation only."""
        recipe = with_params(self.base, params)
        tuning = replace(recipe.tuning, baseline=False, cnn_baseline=False)
        recipe = replace(recipe, tuning=tuning, trainer=replace(recipe.trainer, progress_bar=False))
        recipe = budgeted(recipe, self.search.trial_tokens, self.search.val_checks, self.sizes)
        extra = {"max_time": timedelta(minutes=self.search.trial_minutes)} if self.search.trial_minutes else {}
        try:
            result = finetune(recipe, folder, seed, overwrite=True, evaluate=False, callbacks=callbacks, fold=fold,
                              **extra)  # fmt: skip
        finally:
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        if fold is not None:  # config.yaml is the recipe, which alone would train on the data's own splits
            atomic_write_text(folder / "fold.json", json.dumps({"fold": fold[0], "folds": fold[1]}) + "\n")
        return result

    def rerun(self, trial, seed: int) -> float:
        """Trial ``trial``'s options trained again with ``seed`` at the same budget (on every
        fold, with folds), into ``confirm/NNNN/seedK``; its score (a finished rerun is read back)."""
        folder = self.out / "confirm" / f"{trial.number:04d}" / f"seed{seed}"
        done = folder / "validation.json"
        if done.is_file():
            return json.loads(done.read_text())[self.monitor]
        values, _ = self.score(options_of(self.dimensions, trial.params), folder, seed)
        if None in values:
            raise HyenaDNAError(f"trial {trial.number} with seed {seed}: no validation check within the budget")
        value = statistics.fmean(values)
        atomic_write_text(done, json.dumps({self.monitor: value}) + "\n")
        return value
