"""Learning-rate decay on a validation plateau: the ``plateau`` schedule's decays.

A cosine fitted to ``max_epochs`` is wrong for a run that early stopping ends: the learning rate
is still high when it stops, or the run ends at the cosine's floor long after it stopped
improving. Under ``optim.schedule: plateau`` the rate stays at its peak after the warmup and is
cut by ``plateau_factor`` whenever the monitored validation metric has not improved for
``plateau_patience`` checks; early stopping (a larger patience) then ends the run. The schedule
thus follows the steps the run takes, whatever its upper bound.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.callbacks import Callback

from hyenadna.errors import HyenaDNAError
from hyenadna.training.optim import OptimOptions


class PlateauDecay(Callback):
    """Cuts every parameter group's learning rate by ``factor`` after ``patience`` validation
    checks without improvement of ``monitor`` (``mode`` ``max`` or ``min``), never below
    ``min_ratio`` of the group's initial rate. Checks within the first ``warmup_steps`` steps
    set the value to beat but never count towards a plateau.

    The decays lower the warmup schedule's base rates (the LambdaLR's ``base_lrs``), so they
    persist through its later steps and travel with the checkpoint; the callback's own state
    (the best value and the checks since) is checkpointed too, so a resumed run decays as an
    unbroken one would."""

    def __init__(
        self, monitor: str, mode: str, factor: float, patience: int, min_ratio: float, warmup_steps: int = 0
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {mode!r}")
        self.monitor, self.mode, self.warmup_steps = monitor, mode, warmup_steps
        self.factor, self.patience, self.min_ratio = factor, patience, min_ratio
        self.best: float | None = None
        self.checks_since_best = 0
        self.decays = 0

    def _improved(self, value: float) -> bool:
        if math.isnan(value):  # a NaN never improves, and never becomes the value to beat
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if trainer.global_step < self.warmup_steps:  # still warming up: the rate has not peaked
            if self._improved(value):
                self.best = value
            return
        if self._improved(value):
            self.best, self.checks_since_best = value, 0
            return
        self.checks_since_best += 1
        if self.checks_since_best >= self.patience:
            self.checks_since_best = 0
            self.decays += 1
            for config in trainer.lr_scheduler_configs:
                decay(config.scheduler, self.factor, self.min_ratio)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "checks_since_best": self.checks_since_best, "decays": self.decays}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]
        self.checks_since_best = state_dict["checks_since_best"]
        self.decays = state_dict["decays"]


def decay(scheduler: Any, factor: float, min_ratio: float) -> None:
    """``scheduler``'s base rates (a LambdaLR's) times ``factor``, floored at ``min_ratio`` of
    each group's initial rate, and its optimiser's current rates set to match."""
    optimizer = scheduler.optimizer
    floors = [group["initial_lr"] * min_ratio for group in optimizer.param_groups]
    scheduler.base_lrs = [max(base * factor, floor) for base, floor in zip(scheduler.base_lrs, floors)]
    for group, base, rule in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * rule(scheduler.last_epoch)


def plateau_decay(monitor: tuple[str, str] | None, optim: OptimOptions) -> list[Callback]:
    """The :class:`PlateauDecay` callback that ``optim.schedule: plateau`` needs (none for the
    cosine); refused without a validation metric to watch."""
    if optim.schedule != "plateau":
        return []
    if monitor is None:
        raise HyenaDNAError(
            "--optim.schedule plateau decays on the validation metric, and this run has no validation split "
            "(give it one, or use --optim.schedule cosine)"
        )
    decay = PlateauDecay(monitor[0], monitor[1], optim.plateau_factor, optim.plateau_patience, optim.min_lr_ratio,
                         optim.warmup_steps)  # fmt: skip
    return [decay]
