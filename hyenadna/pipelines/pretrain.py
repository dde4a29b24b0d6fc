"""Next-base (causal LM) pretraining on genomes: the Lightning module and ``run_pretrain``.

Validation reports ``val/bits_per_base`` as :mod:`hyenadna.inference.likelihood` defines it for every
command (A/C/G/T targets, the next-base distribution renormalised over A/C/G/T; a model that has
learnt nothing beyond base frequencies sits near 2), and the training objective as HyenaDNA
reports it: ``val/loss``, the cross-entropy in nats over the whole vocabulary and every target,
and its ``val/perplexity``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric, SumMetric

from hyenadna.checks import values as validate
from hyenadna.config import HyenaConfig
from hyenadna.data.datamodules import PretrainDataModule
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.likelihood import bits_per_base, next_base_log_probs
from hyenadna.io.atomic import atomic_write_text, launched_as_rank_zero, prepare_run_folder, write_run_config
from hyenadna.io.file_plan import check_run_folder
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.training.optim import OptimOptions, build_adamw, decay_groups, warmup_cosine
from hyenadna.training.options import ModelOptions, PretrainData, TrainerOptions
from hyenadna.training.throughput import StepTimer
from hyenadna.training.trainer import build_trainer, resume_checkpoint


class CausalLMModule(L.LightningModule):
    """HyenaDNA trained to predict each base from the ones before it.

    Hyper-parameters are plain dicts, so Lightning checkpoints load with ``weights_only=True``.
    """

    def __init__(self, model_config: dict, optim: dict, total_steps: int) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = HyenaDNA(HyenaConfig.from_dict(model_config))
        self.optim = OptimOptions(**optim)
        self.total_steps = total_steps
        self.val_loss = MeanMetric()
        self.val_nats = SumMetric()  # negative log-likelihood of the scored bases (hyenadna.inference.likelihood)
        self.val_scored = SumMetric()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    def _loss(self, batch: dict[str, torch.Tensor], logits: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.model(batch["input_ids"]) if logits is None else logits
        return F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        tokens = batch["input_ids"].numel()
        self.log("train/loss", loss, prog_bar=True, sync_dist=False)
        self.log("train/seq_len", float(batch["input_ids"].shape[1]), sync_dist=False)
        self.log("train/tokens", float(tokens), reduce_fx="sum", sync_dist=False)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.model(batch["input_ids"])
        self.val_loss.update(self._loss(batch, logits), weight=batch["labels"].numel())
        _, picked = next_base_log_probs(logits, batch["labels"])
        scored = ~picked.isnan()
        self.val_nats.update(-picked[scored].double().sum())
        self.val_scored.update(scored.sum().double())

    def on_validation_epoch_end(self) -> None:
        if self.val_loss.update_count == 0:
            return
        loss = self.val_loss.compute()
        bits = bits_per_base(float(self.val_nats.compute()), int(self.val_scored.compute()))
        for metric in (self.val_loss, self.val_nats, self.val_scored):
            metric.reset()
        self.log_dict(
            {"val/loss": loss, "val/perplexity": loss.exp(), "val/bits_per_base": torch.tensor(bits)},
            prog_bar=True,
            sync_dist=False,  # MeanMetric already reduced over ranks
        )

    # ---- exact resumption: torch's random state travels with the checkpoint ----

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the random state dropout draws from (a checkpoint is written at the end of a step)."""
        states = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            states["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
        checkpoint["hyenadna_rng"] = states

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._rng_to_restore = checkpoint.get("hyenadna_rng")

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """The first step after a resume starts from the random state the checkpoint recorded,
        so its dropout masks are the straight run's."""
        states = getattr(self, "_rng_to_restore", None)
        if states is not None:
            torch.set_rng_state(states["cpu"])
            if "cuda" in states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(list(states["cuda"]))
            self._rng_to_restore = None

    def configure_optimizers(self):
        optimizer = build_adamw(decay_groups(self.model, self.optim), self.optim)
        scheduler = warmup_cosine(optimizer, self.optim, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def initial_model(options: ModelOptions, seed: int) -> HyenaDNA:
    """The starting model: a preset with fresh weights (seeded) or a saved / released model."""
    from hyenadna.model import load

    torch.manual_seed(seed)
    return load(options.name_or_path, **options.overrides)


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
    module = CausalLMModule(backbone.config.to_dict(), asdict(optim), trainer.max_steps)
    module.model.load_state_dict(backbone.state_dict())
    datamodule = PretrainDataModule(
        data.genomes,
        length=data.length,
        batch_size=data.batch_size,
        samples_per_epoch=data.samples_per_epoch,
        seed=seed,
        rc_prob=data.rc_prob,
        max_n_fraction=data.max_n_fraction,
        val_stride=data.val_stride,
        val_max_windows=data.val_max_windows,
        num_workers=data.num_workers,
        length_warmup=data.length_warmup,
    )
    datamodule.setup("fit")
    if not datamodule.corpus.intervals("val"):
        trainer = replace(trainer, limit_val_batches=0)
    timer = StepTimer()
    lightning_trainer = build_trainer(trainer, out, [timer], optim.grad_clip, reload_dataloaders_every_n_epochs=1)
    if launched_as_rank_zero():  # once options, inputs and the Trainer have passed: a refused run leaves no folder
        prepare_run_folder(out, resume, overwrite)
        write_run_config(out, {"data": data, "model": model, "optim": optim, "trainer": trainer, "output": output,
                               "seed": seed})  # fmt: skip
    start = time.perf_counter()
    lightning_trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(out, resume), weights_only=True)
    summary = {
        "parameters": module.model.num_parameters(),
        "steps": lightning_trainer.global_step,
        "epochs": lightning_trainer.current_epoch,
        "seconds": time.perf_counter() - start,
        **{k: float(v) for k, v in lightning_trainer.callback_metrics.items() if k.startswith(("val/", "train/loss"))},
        "throughput": timer.summary(),
    }
    if lightning_trainer.is_global_zero:
        module.model.save_pretrained(out / "model")
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
