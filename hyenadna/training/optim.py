"""AdamW with HyenaDNA's parameter groups, and the learning-rate schedules: warmup then cosine
over a known length, or warmup then constant with decays on validation plateaus (the length the run
decides; :mod:`hyenadna.training.plateau` applies the decays).

Weight decay applies to the weights of linear and convolution layers of the backbone, as in the
reference's GPT-style grouping. It does not apply to the implicit filter's MLP and its Sin
frequency (the reference gives the filter its own weight decay of 0), nor to norms, biases (the D
skip included), embeddings or positional buffers. A task head's parameters all decay, biases
included (the head's group since heads were first trained), except those of its normalisation
layers (the conv head's batch norms), which decay nowhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hyenadna.checks.values import integer, number
from hyenadna.errors import HyenaDNAError
from hyenadna.modules.filter import ImplicitFilter

SCHEDULES = ("cosine", "plateau")


@dataclass
class OptimOptions:
    """Optimiser and schedule.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW weight decay for the decayed group.
        betas: AdamW betas.
        warmup_steps: linear warmup from 0 to ``lr``.
        schedule: after the warmup, ``cosine`` (to ``lr * min_lr_ratio`` at the run's last
            step: ``max_steps``, or the epochs' steps when fewer) or ``plateau`` (constant, times
            ``plateau_factor`` each time the validation metric has not improved for
            ``plateau_patience`` checks, never below ``lr * min_lr_ratio``: the schedule fits
            the steps an early-stopped run takes; needs a validation split).
        min_lr_ratio: the lowest learning rate, as a share of ``lr``.
        plateau_factor: each plateau decay multiplies the learning rate by this.
        plateau_patience: validation checks without improvement before a decay.
        grad_clip: clip the global gradient norm to this (0 turns clipping off).
    """

    lr: float = 6e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 10
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    plateau_factor: float = 0.3
    plateau_patience: int = 1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:  # checked as the options are read: a refused run creates nothing
        number("--optim.lr", self.lr, low=0.0, open_low=True)
        number("--optim.weight_decay", self.weight_decay, low=0.0)
        if len(self.betas) != 2:
            raise HyenaDNAError(f"--optim.betas must be two numbers, got {self.betas!r}")
        for beta in self.betas:
            number("--optim.betas", beta, 0.0, 1.0)
            if beta >= 1:
                raise HyenaDNAError(f"--optim.betas must lie in [0, 1), got {beta:g}")
        integer("--optim.warmup_steps", self.warmup_steps, low=0)
        if self.schedule not in SCHEDULES:
            raise HyenaDNAError(f"--optim.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        number("--optim.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        number("--optim.plateau_factor", self.plateau_factor, 0.0, 1.0, open_low=True)
        if self.plateau_factor >= 1:
            raise HyenaDNAError(f"--optim.plateau_factor must be below 1 (a decay), got {self.plateau_factor:g}")
        integer("--optim.plateau_patience", self.plateau_patience, low=1)
        number("--optim.grad_clip", self.grad_clip, low=0.0)


def parameter_groups(model: nn.Module, weight_decay: float) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split trainable parameters into (decayed, not decayed), following the rules above."""
    filter_params = {id(p) for m in model.modules() if isinstance(m, ImplicitFilter) for p in m.parameters()}
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            decayed = (
                name == "weight"
                and isinstance(module, (nn.Linear, nn.Conv1d))
                and id(param) not in filter_params
                and weight_decay > 0
            )
            (decay if decayed else no_decay).append(param)
    return decay, no_decay


def build_adamw(groups: list[dict], options: OptimOptions) -> torch.optim.AdamW:
    """AdamW over ``groups`` (dicts with ``params`` and optionally ``lr`` / ``weight_decay``)."""
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise HyenaDNAError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(groups, lr=options.lr, betas=tuple(options.betas), weight_decay=options.weight_decay)


def decay_groups(model: nn.Module, options: OptimOptions, lr: float | None = None) -> list[dict]:
    decay, no_decay = parameter_groups(model, options.weight_decay)
    lr = options.lr if lr is None else lr
    return [
        {"params": decay, "weight_decay": options.weight_decay, "lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr},
    ]


def head_groups(head: nn.Module, options: OptimOptions) -> list[dict]:
    """The head's parameters at ``options.lr``: decayed, but for its normalisation layers' (a
    second group, left out when the head has none, so a head without norms trains as it did)."""
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm, nn.GroupNorm)
    plain = {id(p) for m in head.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}
    params = [p for p in head.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) not in plain], "lr": options.lr, "weight_decay": options.weight_decay}
    ]
    if plain:
        groups.append({"params": [p for p in params if id(p) in plain], "lr": options.lr, "weight_decay": 0.0})
    return groups


def warmup_cosine(optimizer: torch.optim.Optimizer, options: OptimOptions, total_steps: int | Callable[[], float]):
    """A LambdaLR: linear warmup, then cosine from each group's lr to ``min_lr_ratio`` of it at
    ``total_steps``, or (``schedule: plateau``) constant, the plateau decays lowering the groups'
    base rates. A callable length is asked once, at the first step past the warmup."""
    warmup = max(0, options.warmup_steps)
    length: list[int] = [] if callable(total_steps) else [total_steps]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if options.schedule == "plateau":
            return 1.0
        progress = 0.0  # the cosine's start, whatever its length
        if step > warmup:
            if not length:
                length.append(int(total_steps()))
            progress = min(1.0, (step - warmup) / (max(length[0], warmup + 1) - warmup))
        return options.min_lr_ratio + (1 - options.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def schedule_over_the_run(optimizer: torch.optim.Optimizer, options: OptimOptions, trainer) -> dict:
    """Lightning's optimiser configuration: ``optimizer`` with :func:`warmup_cosine` stepped at
    every optimiser step and spanning the steps ``trainer`` takes
    (``trainer.estimated_stepping_batches``: ``max_steps``, or the epochs' batches per process
    over gradient accumulation when fewer, on however many devices). Asked at the first step past
    the warmup, when the Trainer has set up its loaders: asking earlier would set them up before
    a resumed run has restored its place in the epoch."""
    scheduler = warmup_cosine(optimizer, options, lambda: trainer.estimated_stepping_batches)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
