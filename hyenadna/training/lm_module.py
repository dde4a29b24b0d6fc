"""Next-base (causal LM) pretraining as a Lightning module.

Validation reports ``val/bits_per_base`` as :mod:`hyenadna.inference.likelihood` defines it for every
command (A/C/G/T targets, the next-base distribution renormalised over A/C/G/T; a model that has
learnt nothing beyond base frequencies sits near 2), and the training objective as HyenaDNA
reports it: ``val/loss``, the cross-entropy in nats over the whole vocabulary and every target,
and its ``val/perplexity``. With ``data.train_eval_windows`` a second validation loader scores
fixed training windows the same way: ``val/train_bits_per_base``, and ``val/gap``, held-out minus
training bits per base, which grows when a model starts to memorise its genome rather than learn
from it.
"""

from __future__ import annotations

from dataclasses import asdict

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric, SumMetric

from hyenadna.inference.likelihood import bits_per_base, next_base_log_probs
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.training.optim import OptimOptions, build_adamw, decay_groups, schedule_over_the_run


class CausalLMModule(L.LightningModule):
    """HyenaDNA trained to predict each base from the ones before it.

    Hyper-parameters are recorded as plain dicts, so Lightning checkpoints load with
    ``weights_only=True``.
    """

    def __init__(self, model: HyenaDNA, optim: OptimOptions) -> None:
        super().__init__()
        self.save_hyperparameters({"model_config": model.config.to_dict(), "optim": asdict(optim)})
        self.model = model
        self.optim = optim
        self.val_loss = MeanMetric()
        self.val_nats = SumMetric()  # negative log-likelihood of the scored bases (hyenadna.inference.likelihood)
        self.val_scored = SumMetric()
        self.train_eval_nats = SumMetric()  # the same sums over the training windows (loader 1)
        self.train_eval_scored = SumMetric()

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

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Loader 0 holds the held-out windows; loader 1, if any, the training windows."""
        logits = self.model(batch["input_ids"])
        held_out = dataloader_idx == 0
        nats, count = (self.val_nats, self.val_scored) if held_out else (self.train_eval_nats, self.train_eval_scored)
        if held_out:
            self.val_loss.update(self._loss(batch, logits), weight=batch["labels"].numel())
        _, picked = next_base_log_probs(logits, batch["labels"])
        scored = ~picked.isnan()
        nats.update(-picked[scored].double().sum())
        count.update(scored.sum().double())

    def on_validation_epoch_end(self) -> None:
        logged = self._validation_figures() if self.val_loss.update_count else {}
        for metric in (self.val_loss, self.val_nats, self.val_scored, self.train_eval_nats, self.train_eval_scored):
            metric.reset()  # every pass starts from zero, even one that scored no held-out base
        if logged:
            self.log_dict(logged, prog_bar=True, sync_dist=False)  # the metrics already reduced over ranks

    def _validation_figures(self) -> dict[str, torch.Tensor]:
        """This pass's held-out loss, perplexity and bits per base, and the training windows' figure
        and the gap where loader 1 ran."""
        loss = self.val_loss.compute()
        bits = bits_per_base(float(self.val_nats.compute()), int(self.val_scored.compute()))
        logged = {"val/loss": loss, "val/perplexity": loss.exp(), "val/bits_per_base": torch.tensor(bits)}
        if self.train_eval_scored.update_count:
            train_bits = bits_per_base(float(self.train_eval_nats.compute()), int(self.train_eval_scored.compute()))
            logged |= {"val/train_bits_per_base": torch.tensor(train_bits), "val/gap": torch.tensor(bits - train_bits)}
        return logged

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
        return schedule_over_the_run(build_adamw(decay_groups(self.model, self.optim), self.optim), self.optim,
                                     self.trainer)  # fmt: skip
