"""Fine-tuning as a Lightning module: a task model trained by its own loss, with whole-split
metrics from collected predictions (never averaged over batches)."""

from __future__ import annotations

from dataclasses import asdict

import lightning as L
import numpy as np
import torch

from hyenadna.analysis.metrics import DEFAULT_MONITOR, LOWER_IS_BETTER, task_metrics
from hyenadna.heads.task_model import TaskModel
from hyenadna.training.optim import OptimOptions, build_adamw, decay_groups, head_groups, schedule_over_the_run
from hyenadna.training.options import FinetuneOptions


class SequenceTaskModule(L.LightningModule):
    """A :class:`~hyenadna.heads.task_model.TaskModel` (a Hyena backbone with its head, or the
    CNN baseline) trained by :meth:`TaskModel.training_loss`; the head at ``optim.lr``, the
    backbone at ``backbone_lr_scale`` times it (or frozen).

    Hyper-parameters are recorded as plain dicts, so Lightning checkpoints load with
    ``weights_only=True``.
    """

    def __init__(
        self, model: TaskModel, optim: OptimOptions, freeze_backbone: bool = False, backbone_lr_scale: float = 0.1
    ) -> None:
        super().__init__()
        recorded = {"head_config": asdict(model.head_config), "optim": asdict(optim)}
        self.save_hyperparameters(
            recorded | {"freeze_backbone": freeze_backbone, "backbone_lr_scale": backbone_lr_scale}
        )
        self.model = model
        self.task = model.head_config.task
        self.optim = optim
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
        groups = head_groups(self.model.head, self.optim)
        if not self.freeze_backbone:
            groups += decay_groups(self.model.backbone, self.optim, lr=self.optim.lr * self.backbone_lr_scale)
        return schedule_over_the_run(build_adamw(groups, self.optim), self.optim, self.trainer)


def validation_monitor(tuning: FinetuneOptions, task: str, validated: bool) -> tuple[str, str] | None:
    """The validation metric and its direction (``max``/``min``) that pick the best checkpoint
    and stop early: ``tuning.monitor`` or the task's default; None without a validation split."""
    if tuning.monitor:
        metric, mode = tuning.monitor, "min" if tuning.monitor in LOWER_IS_BETTER else "max"
    else:
        metric, mode = DEFAULT_MONITOR[task]
    return (f"val/{metric}", mode) if validated else None


def early_stopping(monitor: tuple[str, str] | None, patience: int) -> list:
    """An EarlyStopping callback on ``monitor`` when there is one and ``patience`` is set."""
    if monitor is None or not patience:
        return []
    from lightning.pytorch.callbacks import EarlyStopping

    # strict=False: a run that ends before its first validation (max_steps shorter than an
    # epoch, with validation once an epoch) finishes, tests and saves instead of crashing
    return [EarlyStopping(monitor=monitor[0], mode=monitor[1], patience=patience, strict=False)]
