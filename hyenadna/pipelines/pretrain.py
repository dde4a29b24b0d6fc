"""The ``pretrain`` command: next-base (causal LM) pretraining on genomes
(:class:`~hyenadna.training.lm_module.CausalLMModule` says what it minimises and reports)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import lightning as L

from hyenadna.checks import values as validate
from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write_text
from hyenadna.io.file_plan import check_run_folder
from hyenadna.training.lm_module import CausalLMModule
from hyenadna.training.optim import OptimOptions
from hyenadna.training.options import ModelOptions, PretrainData, TrainerOptions
from hyenadna.training.plateau import plateau_decay
from hyenadna.training.prepare import initial_model, pretrain_data_module
from hyenadna.training.runtime import runtime_facts
from hyenadna.training.throughput import StepTimer
from hyenadna.training.trainer import build_trainer, start_run_folder, timed_fit


def run_pretrain(
    data: PretrainData,
    model: ModelOptions = ModelOptions(),  # noqa: B008 (frozen-in defaults, shown by --print_config; never mutated)
    optim: OptimOptions = OptimOptions(),  # noqa: B008
    trainer: TrainerOptions = TrainerOptions(),  # noqa: B008
    output: str = "runs/pretrain",
    resume: bool | str = False,
    overwrite: bool = False,
    seed: int = 0,
) -> dict:
    """Pretrain a HyenaDNA model to predict each base from the bases before it.

    The final model is saved to ``output/model`` (our format); returns the summary.

    Args:
        data: genomes and windows.
        model: the starting model (a preset trains from scratch).
        optim: AdamW and the warmup + cosine schedule.
        trainer: steps, devices, strategy, precision, validation and checkpoint intervals.
        output: run folder: checkpoints/, logs/ (CSV and TensorBoard), model/ (the final model), summary.json.
        resume: continue from output/checkpoints/last.ckpt (true) or a given checkpoint: weights,
            optimiser, schedule, step count and the position in the epoch's windows.
        overwrite: replace an earlier run in output (a non-empty output needs resume or overwrite).
        seed: seed for initialisation and for the windows, 0 to 2**32-1.
    """
    validate.integer("--seed", seed, 0, 2**32 - 1)  # the range seed_everything takes
    if not data.genomes:
        raise HyenaDNAError("pretraining needs at least one genome (data.genomes)")
    out = Path(output)
    check_run_folder("pretrain", out, model.name_or_path, {"--data.genomes": [g.path for g in data.genomes]}, overwrite)
    L.seed_everything(seed, workers=True, verbose=False)
    backbone = initial_model(model, seed)
    if data.length > backbone.config.l_max:
        raise HyenaDNAError(f"data.length {data.length} is longer than the model's l_max {backbone.config.l_max}")
    module = CausalLMModule(backbone, optim)
    datamodule = pretrain_data_module(data, seed)
    if not datamodule.corpus.intervals("val"):
        trainer = replace(trainer, limit_val_batches=0)
    timer = StepTimer()
    callbacks = [timer, *plateau_decay(("val/loss", "min") if datamodule.corpus.intervals("val") else None, optim)]
    lightning_trainer = build_trainer(trainer, out, callbacks, optim.grad_clip, reload_dataloaders_every_n_epochs=1)
    ran = {"data": data, "model": model, "optim": optim, "trainer": trainer, "output": output, "seed": seed}
    start_run_folder(out, resume, overwrite, ran, module)
    seconds = timed_fit(lightning_trainer, module, datamodule, out, resume)
    summary = {
        "parameters": backbone.num_parameters(),
        "steps": lightning_trainer.global_step,
        "epochs": lightning_trainer.current_epoch,
        "seconds": seconds,
        **{k: float(v) for k, v in lightning_trainer.callback_metrics.items() if k.startswith(("val/", "train/loss"))},
        "throughput": timer.summary(),
        "runtime": runtime_facts(lightning_trainer),
    }
    if lightning_trainer.is_global_zero:
        backbone.save_pretrained(out / "model")
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
