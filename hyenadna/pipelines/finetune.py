"""Fine-tuning on labelled sequences: the Lightning module and ``run_finetune``.

Metrics are computed on whole splits from collected predictions (never averaged over batches).
The best checkpoint by the validation metric is restored before testing, and the fine-tuned
model is saved self-contained (backbone, head, task and labels) to ``output/model``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from hyenadna.analysis.metrics import DEFAULT_MONITOR, task_metrics
from hyenadna.checks import values as validate
from hyenadna.config import HyenaConfig
from hyenadna.data.datamodules import LabelledDataModule
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.cnn import ConvClassifier, ConvConfig
from hyenadna.heads.loading import predict_sequences
from hyenadna.heads.task_model import HeadConfig, SequenceModel, lm_base_weight
from hyenadna.io.atomic import (
    atomic_write_text,
    launched_as_rank_zero,
    prepare_run_folder,
    write_run_config,
)
from hyenadna.io.file_plan import check_run_folder
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.pipelines.predict import prediction_table
from hyenadna.pipelines.pretrain import initial_model
from hyenadna.training.optim import OptimOptions, build_adamw, decay_groups, warmup_cosine
from hyenadna.training.options import FinetuneOptions, HeadOptions, LabelledData, ModelOptions, TrainerOptions
from hyenadna.training.throughput import StepTimer
from hyenadna.training.trainer import build_trainer, resume_checkpoint


class SequenceTaskModule(L.LightningModule):
    """A :class:`SequenceModel` (or, with ``architecture="cnn"``, the :mod:`hyenadna.heads.cnn`
    baseline, ``model_config`` then being its :class:`ConvConfig`) trained with cross-entropy,
    binary cross-entropy or MSE."""

    def __init__(
        self,
        model_config: dict,
        head_config: dict,
        optim: dict,
        total_steps: int,
        freeze_backbone: bool = False,
        backbone_lr_scale: float = 0.1,
        architecture: str = "hyena",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if architecture == "cnn":
            self.model = ConvClassifier(ConvConfig(**model_config), HeadConfig(**head_config))
        else:
            self.model = SequenceModel(HyenaDNA(HyenaConfig.from_dict(model_config)), HeadConfig(**head_config))
        self.task = self.model.head_config.task
        self.optim = OptimOptions(**optim)
        self.total_steps = total_steps
        self.freeze_backbone = freeze_backbone
        self.backbone_lr_scale = backbone_lr_scale
        if freeze_backbone:
            self.model.backbone.requires_grad_(False)
        self._outputs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"val": [], "test": []}
        self.test_metrics: dict[str, float] = {}

    def on_train_epoch_start(self) -> None:
        if self.freeze_backbone:
            self.model.backbone.eval()  # no dropout in a frozen backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"])

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.training_loss(logits, batch["target"], batch["attention_mask"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch), batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["target"]))
        return loss

    def _collect(self, split: str, batch: dict[str, torch.Tensor]) -> None:
        logits = self(batch)
        self.log(f"{split}/loss", self.loss(logits, batch), batch_size=len(batch["target"]), sync_dist=True)
        outputs = self.model.predict_outputs(logits)
        self._outputs[split].append((outputs.cpu().numpy(), batch["target"].cpu().numpy()))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect("test", batch)

    def _split_metrics(self, split: str) -> dict[str, float]:
        chunks = self._outputs[split]
        self._outputs[split] = []
        if not chunks:
            return {}
        outputs = torch.from_numpy(np.concatenate([c[0] for c in chunks]))
        targets = torch.from_numpy(np.concatenate([c[1] for c in chunks]))
        if self.trainer.world_size > 1:  # every rank's predictions, in rank order
            outputs = self.all_gather(outputs.to(self.device)).flatten(0, 1).cpu()
            targets = self.all_gather(targets.to(self.device)).flatten(0, 1).cpu()
        return task_metrics(self.task, outputs.numpy(), targets.numpy())

    def on_validation_epoch_end(self) -> None:
        metrics = self._split_metrics("val")
        if metrics and not self.trainer.sanity_checking:
            self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=True, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._split_metrics("test")
        self.log_dict({f"test/{k}": v for k, v in self.test_metrics.items()}, sync_dist=False)

    def configure_optimizers(self):
        head = [*self.model.head.parameters()]
        groups = [{"params": head, "lr": self.optim.lr, "weight_decay": self.optim.weight_decay}]
        if not self.freeze_backbone:
            groups += decay_groups(self.model.backbone, self.optim, lr=self.optim.lr * self.backbone_lr_scale)
        optimizer = build_adamw(groups, self.optim)
        scheduler = warmup_cosine(optimizer, self.optim, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _sequences_and_targets(dataset) -> tuple[list[str], np.ndarray]:
    return [r.sequence for r in dataset.records], np.stack(dataset.targets)


def schedule_steps(trainer: TrainerOptions, n_train: int, batch_size: int) -> int:
    """Optimiser steps the run takes, which the cosine schedule spans: ``max_steps``, or
    ``max_epochs`` epochs when that is fewer (or ``max_steps`` is -1, no step limit)."""
    if trainer.max_epochs is None or trainer.max_epochs <= 0:
        if trainer.max_steps <= 0:
            raise HyenaDNAError("set trainer.max_steps or trainer.max_epochs: the schedule needs a length")
        return trainer.max_steps
    devices = len(trainer.devices) if isinstance(trainer.devices, list) else trainer.devices
    devices = devices if isinstance(devices, int) else 1  # "auto": one process, as on this CPU
    per_device = math.ceil(n_train / max(devices * trainer.num_nodes, 1))
    per_epoch = math.ceil(math.ceil(per_device / batch_size) / trainer.accumulate_grad_batches)
    steps = trainer.max_epochs * per_epoch
    return steps if trainer.max_steps <= 0 else min(steps, trainer.max_steps)


CNN_NAME = "cnn"
"""``model.name_or_path`` that trains the :mod:`hyenadna.heads.cnn` baseline instead of a Hyena model."""
FINETUNE_OPTIM = OptimOptions(lr=1e-3, weight_decay=0.01, warmup_steps=20)


def run_finetune(
    data: LabelledData,
    model: ModelOptions = ModelOptions(),  # noqa: B008 (frozen-in defaults, shown by --print_config; never mutated)
    head: HeadOptions = HeadOptions(),  # noqa: B008
    tuning: FinetuneOptions = FinetuneOptions(),  # noqa: B008
    optim: OptimOptions = FINETUNE_OPTIM,
    trainer: TrainerOptions = TrainerOptions(),  # noqa: B008
    output: str = "runs/finetune",
    resume: bool | str = False,
    overwrite: bool = False,
    seed: int = 0,
) -> dict:
    """Fine-tune a model on labelled sequences; test metrics go to output/metrics.json.

    Tests the best checkpoint and saves the fine-tuned model; returns the metrics.

    Args:
        data: labelled files and how to read and batch them.
        model: the backbone: a model folder (ours or a released HyenaDNA checkpoint), a preset,
            or ``cnn`` for the convolutional baseline (``overrides`` then set its shape).
        head: the task head: its kind (pooled linear, class likelihoods or positional), pooling,
            layer and reverse-complement conjoining.
        tuning: frozen or full fine-tuning, early stopping, the k-mer and CNN baselines.
        optim: AdamW and schedule (the head's learning rate; the backbone's is scaled).
        trainer: steps, devices, precision, validation interval.
        output: run folder: checkpoints/, logs/, model/ (self-contained fine-tuned model), metrics.json
            (and cnn_baseline/, the CNN's own run folder, when it is trained).
        resume: continue from output/checkpoints/last.ckpt.
        overwrite: replace an earlier run in output (a non-empty output needs resume or overwrite).
        seed: seed for initialisation, the validation split and shuffling, 0 to 2**32-1.
    """
    validate.integer("--seed", seed, 0, 2**32 - 1)  # the range seed_everything takes
    finetune = tuning
    if not data.train:
        raise HyenaDNAError("fine-tuning needs labelled training data (data.train)")
    out = Path(output)
    check_run_folder(
        "finetune",
        out,
        model.name_or_path,
        {
            "--data.train": data.train,
            "--data.val": data.val,
            "--data.test": data.test,
            "--data.reader.genome": data.reader.get("genome"),
        },
        overwrite,
    )
    L.seed_everything(seed, workers=True, verbose=False)
    is_cnn = model.name_or_path == CNN_NAME
    backbone = None if is_cnn else initial_model(model, seed)
    datamodule = LabelledDataModule(
        data.train,
        val=data.val,
        test=data.test,
        task=data.task,
        format=data.format,
        reader=data.reader,
        target_names=data.target_names,
        val_fraction=data.val_fraction,
        seed=seed,
        batch_size=data.batch_size,
        max_length=data.max_length or (backbone.config.l_max if backbone else None),
        truncation=data.truncation,
        padding_side=data.padding_side,
        num_workers=data.num_workers,
        rc_prob=data.rc_prob,
    )
    datamodule.setup("fit")
    vocab = datamodule.vocab
    longest = max(len(r.sequence) for ds in datamodule.datasets.values() for r in ds.records)
    longest = min(longest, data.max_length or longest)
    head_config = HeadConfig(task=vocab.task, labels=list(vocab.names), train_length=longest, **asdict(head))
    if backbone is None:  # the CNN baseline: fresh weights, one learning rate, sized to the longest sequence
        model_config = asdict(ConvConfig(length=data.max_length or longest, **model.overrides))
    else:
        model_config = backbone.config.to_dict()
    module = SequenceTaskModule(
        model_config,
        asdict(head_config),
        asdict(optim),
        schedule_steps(trainer, len(datamodule.datasets["train"]), data.batch_size),
        finetune.freeze_backbone,
        1.0 if is_cnn else finetune.backbone_lr_scale,
        architecture="cnn" if is_cnn else "hyena",
    )
    if backbone is not None:
        module.model.backbone.load_state_dict(backbone.state_dict())
        if head_config.kind == "likelihood":  # its layers start from the loaded LM head, its priors from the labels
            counts = np.bincount(np.stack(datamodule.datasets["train"].targets), minlength=head_config.num_outputs)
            module.model.head.start_from(lm_base_weight(module.model.backbone), torch.from_numpy(counts))
    metric, mode = (
        (finetune.monitor, DEFAULT_MONITOR[vocab.task][1]) if finetune.monitor else DEFAULT_MONITOR[vocab.task]
    )
    monitor = f"val/{metric}" if "val" in datamodule.datasets else None
    timer = StepTimer()
    callbacks: list = [timer]
    if monitor and finetune.patience:
        from lightning.pytorch.callbacks import EarlyStopping

        # strict=False: a run that ends before its first validation (max_steps shorter than an
        # epoch, with validation once an epoch) finishes, tests and saves instead of crashing
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=finetune.patience, strict=False))
    lightning_trainer = build_trainer(
        trainer, out, callbacks, optim.grad_clip, monitor=(monitor, mode) if monitor else None
    )
    if launched_as_rank_zero():  # once options, inputs and the Trainer have passed: a refused run leaves no folder
        prepare_run_folder(out, resume, overwrite)
        write_run_config(out, {"data": data, "model": model, "head": head, "tuning": tuning, "optim": optim,
                               "trainer": trainer, "output": output, "seed": seed})  # fmt: skip
    start = time.perf_counter()
    lightning_trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(out, resume), weights_only=True)
    seconds = time.perf_counter() - start
    best = out / "checkpoints" / "best.ckpt"
    if monitor and best.is_file():
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    result: dict[str, Any] = {"task": vocab.task, "labels": vocab.names, "train_seconds": seconds}
    result["steps"] = lightning_trainer.global_step
    result["parameters"] = sum(p.numel() for p in module.model.parameters())
    result["throughput"] = timer.summary()
    if "test" in datamodule.datasets:
        lightning_trainer.test(module, datamodule=datamodule, verbose=False, weights_only=True)
        result["test"] = module.test_metrics
        if finetune.baseline:
            from hyenadna.analysis.kmer_baseline import kmer_baseline

            train_seqs, train_targets = _sequences_and_targets(datamodule.datasets["train"])
            test_seqs, test_targets = _sequences_and_targets(datamodule.datasets["test"])
            val = _sequences_and_targets(datamodule.datasets["val"]) if "val" in datamodule.datasets else None
            result["kmer_baseline"] = kmer_baseline(
                vocab.task, train_seqs, train_targets, test_seqs, test_targets, seed=seed, val=val
            )
        if finetune.cnn_baseline and not is_cnn:  # same data, optimiser, schedule and stopping rule
            cnn = run_finetune(data, ModelOptions(CNN_NAME), head, replace(tuning, baseline=False, cnn_baseline=False),
                               optim, trainer, output=str(out / "cnn_baseline"), overwrite=True, seed=seed)  # fmt: skip
            result["cnn_baseline"] = cnn["test"]
    result["split_sizes"] = {k: len(v) for k, v in datamodule.datasets.items()}
    if lightning_trainer.is_global_zero:
        module.model.save_pretrained(out / "model")
        if "test" in datamodule.datasets:
            result["report"] = write_test_report(out, module.model.to("cpu"), datamodule.datasets["test"],
                                                 data.batch_size)  # fmt: skip
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    return result


def write_test_report(out: Path, model, dataset, batch_size: int) -> dict[str, Any]:
    """Beside ``metrics.json``: ``test_predictions.tsv`` (every test sequence's predictions) and,
    with the plot extra installed, ``plots/`` (ROC, precision-recall, confusion matrix for
    classifiers, and the training curves). Returns what was written."""
    from hyenadna.analysis import plotting

    records = dataset.records
    values = predict_sequences(model, [r.sequence for r in records], batch_size)
    config = model.head_config
    table = prediction_table(config, [r.name for r in records], values, [r.label for r in records])
    atomic_write_text(out / "test_predictions.tsv", table)
    report: dict[str, Any] = {"test_predictions": str(out / "test_predictions.tsv")}
    if not plotting.plotting_available():
        report["plots"] = "not drawn: pip install 'hyenadna[plot]'"
        return report
    written = []
    if config.task == "multiclass":
        written += plotting.classification_curves(values, np.stack(dataset.targets), config.labels, out / "plots")
    logs = sorted((out / "logs" / "csv").glob("version_*/metrics.csv"))
    if logs:
        written.append(plotting.training_curves(logs[-1], out / "plots" / "training.png"))
    report["plots"] = [str(p) for p in written]
    return report
