"""Pruning reports each validation check by its number, so trials of different batch sizes meet
at equal budgets; a trial worse than the median at a check is pruned."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch

from hyenadna.training.pruning import CheckPruning


def validate(callback: CheckPruning, value: float, step: int, sanity: bool = False) -> None:
    trainer = SimpleNamespace(
        sanity_checking=sanity, global_step=step, callback_metrics={"val/loss": torch.tensor(value)}
    )
    callback.on_validation_end(trainer, None)


def test_reports_by_check_number_and_prunes_a_trial_behind_the_median():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    first = study.ask()
    callback = CheckPruning(first, "val/loss")
    validate(callback, 9.0, step=0, sanity=True)  # the sanity check reports nothing
    for step, value in ((10, 0.6), (20, 0.5), (30, 0.4)):  # batch 32: checks at steps 10, 20, 30
        validate(callback, value, step)
    assert study.trials[0].intermediate_values == {1: pytest.approx(0.6), 2: pytest.approx(0.5), 3: pytest.approx(0.4)}
    study.tell(first, 0.4)

    level = study.ask()  # batch 64: its checks fall at steps 5, 10, 15 but meet the first trial's by number
    callback = CheckPruning(level, "val/loss")
    validate(callback, 0.6, step=5)
    validate(callback, 0.45, step=10)
    study.tell(level, 0.45)

    behind = study.ask()
    callback = CheckPruning(behind, "val/loss")
    with pytest.raises(optuna.TrialPruned, match="pruned at validation check 1 \\(step 7\\)"):
        validate(callback, 0.69, step=7)
