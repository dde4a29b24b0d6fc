"""Pruning a tuning trial from its validation curve (Optuna's Lightning callback, by check)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna_integration import PyTorchLightningPruningCallback


class CheckPruning(PyTorchLightningPruningCallback):
    """optuna-integration's pruning callback, reporting each validation check by its number
    (1, 2, ...) rather than its epoch.

    A trial validates several times an epoch (``search.val_checks``), and Optuna keeps only the
    first report of each step, so by epoch the pruner would see one point of the curve. Nor can
    the optimiser step serve: trials differ in batch size, so their steps differ, and the pruner
    compares trials at equal steps. With a budget in training bases, the k-th check of every
    trial comes after the same number of bases. Distributed trials keep the parent's epochs."""

    def __init__(self, trial: Any, monitor: str) -> None:
        super().__init__(trial, monitor)
        self.checks = 0

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.is_ddp_backend:
            return super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return None
        self.checks += 1
        self._trial.report(float(trainer.callback_metrics[self.monitor]), step=self.checks)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned at validation check {self.checks} (step {trainer.global_step})")
        return None
