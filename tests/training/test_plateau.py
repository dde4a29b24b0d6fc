"""The plateau schedule: constant after the warmup, cut on each validation plateau, floored,
checkpointed; a fine-tune on it lowers its rate when validation stops improving."""

from __future__ import annotations

import csv
import random
from types import SimpleNamespace

import pytest
import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.training.optim import OptimOptions, warmup_cosine
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions
from hyenadna.training.plateau import PlateauDecay, plateau_decay

PLATEAU = OptimOptions(lr=1.0, warmup_steps=2, schedule="plateau", plateau_factor=0.5, plateau_patience=2,
                       min_lr_ratio=0.2)  # fmt: skip


TINY = {"n_layer": 1, "d_model": 16}


def scheduled(options: OptimOptions) -> torch.optim.lr_scheduler.LambdaLR:
    params = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    optimizer = torch.optim.SGD([{"params": params[:1], "lr": 1.0}, {"params": params[1:], "lr": 0.1}])
    return warmup_cosine(optimizer, options, 100)


def check(callback: PlateauDecay, scheduler, value: float, sanity: bool = False, step: int = 100) -> None:
    configs = [SimpleNamespace(scheduler=scheduler)]
    metrics = {"val/mcc": torch.tensor(value)}
    trainer = SimpleNamespace(
        sanity_checking=sanity, callback_metrics=metrics, lr_scheduler_configs=configs, global_step=step
    )
    callback.on_validation_end(trainer, None)


def test_constant_after_the_warmup_then_cut_after_patience_checks_and_floored():
    scheduler = scheduled(PLATEAU)
    rates = []
    for _ in range(6):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.step()
    assert rates == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]  # no cosine: the run's length is not known
    callback = PlateauDecay("val/mcc", "max", PLATEAU.plateau_factor, PLATEAU.plateau_patience, PLATEAU.min_lr_ratio)
    check(callback, scheduler, 0.5, sanity=True)  # the sanity check is not a validation
    assert callback.best is None
    for value in (0.3, 0.4, 0.4):  # better, better, level: one check without improvement
        check(callback, scheduler, value)
    assert [g["lr"] for g in scheduler.optimizer.param_groups] == [1.0, 0.1]
    check(callback, scheduler, 0.39)  # the second: a cut, every group alike
    assert [g["lr"] for g in scheduler.optimizer.param_groups] == pytest.approx([0.5, 0.05])
    scheduler.step()  # the cut outlives the schedule's next step
    assert scheduler.get_last_lr() == pytest.approx([0.5, 0.05])
    for value in (0.1, 0.1, 0.1, 0.1, 0.1, 0.1):  # three more cuts: 0.25, then the floor of 0.2
        check(callback, scheduler, value)
    scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.2, 0.02]) and callback.decays == 4
    state = callback.state_dict()
    resumed = PlateauDecay("val/mcc", "max", 0.5, 2, 0.2)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state == {"best": pytest.approx(0.4), "checks_since_best": 0, "decays": 4}


def test_a_metric_that_falls_is_watched_downwards():
    scheduler = scheduled(PLATEAU)
    callback = PlateauDecay("val/mcc", "min", 0.5, 1, 0.0)
    check(callback, scheduler, 0.5)
    check(callback, scheduler, 0.4)
    assert scheduler.optimizer.param_groups[0]["lr"] == 0.5  # still warming up: step 0 of 2
    check(callback, scheduler, 0.45)
    assert scheduler.optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_checks_in_the_warmup_and_nans_never_count_as_a_plateau():
    scheduler = scheduled(PLATEAU)
    callback = PlateauDecay("val/mcc", "max", 0.5, 1, 0.0, warmup_steps=50)
    check(callback, scheduler, float("nan"), step=10)
    assert callback.best is None  # a NaN is never the value to beat
    check(callback, scheduler, 0.4, step=20)
    check(callback, scheduler, 0.3, step=30)  # worse, but still warming up: no cut
    assert callback.best == pytest.approx(0.4) and callback.decays == 0
    check(callback, scheduler, 0.3, step=60)
    assert callback.decays == 1


def test_the_plateau_schedule_needs_a_validation_metric():
    assert plateau_decay(None, OptimOptions()) == []
    with pytest.raises(HyenaDNAError, match="--optim.schedule plateau decays on the validation metric"):
        plateau_decay(None, PLATEAU)
    with pytest.raises(HyenaDNAError, match="--optim.schedule must be one of cosine, plateau, got 'step'"):
        OptimOptions(schedule="step")
    with pytest.raises(HyenaDNAError, match="--optim.plateau_factor must be below 1"):
        OptimOptions(plateau_factor=1.0)


def test_a_finetune_on_the_plateau_schedule_cuts_its_rate_when_validation_stalls(tmp_path):
    """A learning rate too small to move the validation metric: every check is a plateau."""
    rng = random.Random(0)
    files = {}
    for label in ("a", "b"):
        path = tmp_path / f"{label}.fa"
        path.write_text("".join(f">{label}{i}\n{''.join(rng.choices('ACGT', k=32))}\n" for i in range(16)))
        files[label] = str(path)
    optim = OptimOptions(lr=1e-9, warmup_steps=0, schedule="plateau", plateau_factor=0.5, plateau_patience=1,
                         min_lr_ratio=0.01)  # fmt: skip
    trainer = TrainerOptions(max_steps=8, val_every_n_steps=2, accelerator="cpu", devices=1, progress_bar=False,
                             log_every_n_steps=1)  # fmt: skip
    run = tmp_path / "run"
    data, model = LabelledData(train=files, val_fraction=0.25, batch_size=4), ModelOptions("tiny-1k", TINY)
    tuning = FinetuneOptions(baseline=False, patience=0, monitor="loss")
    run_finetune(data, model, tuning=tuning, optim=optim, trainer=trainer, output=str(run))
    with open(next((run / "logs" / "csv").glob("version_*/metrics.csv"))) as fh:
        rates = [float(row["lr-AdamW/pg1"]) for row in csv.DictReader(fh) if row.get("lr-AdamW/pg1")]
    assert rates[0] == pytest.approx(1e-9) and rates[-1] < rates[0] / 3  # cut at least twice in 8 steps
    assert sorted(rates, reverse=True) == rates
