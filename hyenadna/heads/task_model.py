"""The task model: a HyenaDNA backbone and one head (:mod:`hyenadna.heads.config` names the
kinds), with reverse-complement conjoining (logits of both strands averaged) and bidirectional
states (each base's state joined with the reverse strand's).

A fine-tuned model is saved self-contained in one folder:

* ``config.json`` + ``model.safetensors``: the (fine-tuned) backbone in our usual format, so
  ``hyenadna.load(folder)`` still gives a plain ``HyenaDNA`` for embedding;
* ``head.safetensors``: the head's weights;
* ``task.json``: the :class:`HeadConfig` (kind, pooling, layer, RC conjoining, bidirectional,
  the task and its label names);
* ``calibration.json``, where the model was calibrated on held-out data
  (:mod:`hyenadna.heads.calibration`): the scale and biases its probabilities go through.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.base import Head, task_loss, task_outputs
from hyenadna.heads.calibration import CALIBRATION_FILE, Calibration, read_calibration
from hyenadna.heads.config import HEADS, HeadConfig, read_head_config
from hyenadna.inference.masking import to_right_padding
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.modules.pooling import mirror_index, reverse_complement_batch, reverse_complement_onehot


class TaskModel(nn.Module):
    """What every fine-tunable model shares: ``forward(input_ids, attention_mask)`` gives logits
    (averaged with the reverse complement's when the head conjoins), ``predict_outputs`` turns
    them into probabilities or values, through the model's ``calibration`` where it has one
    (logits stay raw: training, attribution of logits). Subclasses define ``_one_strand``,
    ``_one_strand_onehot``, ``max_length`` and ``head_config``."""

    head_config: HeadConfig
    calibration: Calibration | None = None

    @property
    def max_length(self) -> int:
        """The longest input in tokens."""
        raise NotImplementedError

    def _one_strand(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        logits = self._one_strand(input_ids, attention_mask)
        if self.head_config.rc_conjoin:
            rc = reverse_complement_batch(input_ids, attention_mask)
            logits = (logits + self._one_strand(rc, attention_mask)) / 2
        return logits

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        if self.calibration is not None:
            logits = self.calibration.apply(logits)
        return task_outputs(self.head_config.task, logits)

    def save_calibration(self, folder: Path) -> None:
        """``folder/calibration.json`` where the model has a calibration, and none where it has
        not (save_pretrained's last step)."""
        if self.calibration is not None:
            self.calibration.save(folder)
        else:  # a folder saved over must not keep an earlier model's calibration
            (Path(folder) / CALIBRATION_FILE).unlink(missing_ok=True)

    def load_calibration(self, folder: Path) -> None:
        """The calibration in ``folder``, if any, checked against the head's task and labels."""
        self.calibration = read_calibration(folder, self.head_config.task, self.head_config.labels)

    def training_loss(self, logits: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The loss fine-tuning minimises: cross-entropy, binary cross-entropy or MSE by task."""
        return task_loss(self.head_config.task, logits, target)

    def start_from_targets(self, targets: np.ndarray) -> None:
        """Finish the initialisation from the training targets before fine-tuning (nothing by default)."""

    def _one_strand_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits as :meth:`forward` gives them, as a differentiable function of the bases one-hot
        (B, L, 4), A/C/G/T, which may be soft (interpolated): the gradients of attribution.
        Positions that hold no base in ``input_ids`` (N, padding) keep their token's input."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        logits = self._one_strand_onehot(onehot, input_ids, attention_mask)
        if self.head_config.rc_conjoin:
            rc_ids = reverse_complement_batch(input_ids, attention_mask)
            rc_onehot = reverse_complement_onehot(onehot, attention_mask)
            logits = (logits + self._one_strand_onehot(rc_onehot, rc_ids, attention_mask)) / 2
        return logits


class SequenceModel(TaskModel):
    """Backbone + head (the :class:`~hyenadna.heads.base.Head` that ``head.kind`` names):
    ``model(input_ids, attention_mask)`` gives (B, outputs) logits."""

    def __init__(self, backbone: HyenaDNA, head: HeadConfig) -> None:
        super().__init__()
        n = backbone.config.n_layer
        if not -n - 1 <= head.layer <= n:
            raise HyenaDNAError(f"layer {head.layer} out of range for a backbone with {n} layers")
        self.backbone = backbone
        self.head_config = head
        self.head: Head = HEADS[head.kind](backbone, head)

    def _one_strand(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, onehot: torch.Tensor | None = None
    ) -> torch.Tensor:
        hidden = self._states(input_ids, attention_mask, onehot)
        if self.head_config.bidirectional:  # each base's state beside the reverse strand's at that base
            rc_ids = reverse_complement_batch(input_ids, attention_mask)
            rc_onehot = None if onehot is None else reverse_complement_onehot(onehot, attention_mask)
            reverse = self._states(rc_ids, attention_mask, rc_onehot)
            index = mirror_index(attention_mask).unsqueeze(-1).expand_as(reverse)
            hidden = torch.cat([hidden, reverse.gather(1, index)], dim=-1)
        return self.head(hidden, attention_mask, input_ids, onehot)

    def _states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, onehot: torch.Tensor | None
    ) -> torch.Tensor:
        """The backbone's states (B, L, D) at the head's layer; read from ``onehot`` where given."""
        # the mask makes padded rows exact (either padding side): a row's states do not depend on its batch
        reading = nullcontext() if onehot is None else self.backbone.bases_from_onehot(onehot, input_ids)
        with reading:
            return self.backbone.hidden_states(input_ids, layer=self.head_config.layer, attention_mask=attention_mask)

    def training_loss(self, logits: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The head's loss: the task's, or the head's own (the likelihood head's is generative)."""
        return self.head.loss(logits, target, attention_mask)

    def start_from_targets(self, targets: np.ndarray) -> None:
        self.head.start_from_targets(targets)

    def _one_strand_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        aligned, shift = to_right_padding(input_ids, attention_mask)
        if shift is not None:  # the hook below sees the right-aligned rows the backbone runs
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            index = (positions + shift[:, None]) % input_ids.shape[1]
            onehot = onehot.gather(1, index.unsqueeze(-1).expand_as(onehot))
            input_ids, attention_mask = aligned, attention_mask.gather(1, index)
        return self._one_strand(input_ids, attention_mask, onehot)  # the head reads the same bases

    @property
    def max_length(self) -> int:
        return self.head.max_length(self.backbone)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the backbone (our format), the head weights and ``task.json`` into ``path``."""
        folder = Path(path)
        self.backbone.save_pretrained(folder)
        self.head.save_pretrained(folder)
        self.head_config.save(folder)
        self.save_calibration(folder)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, map_location: str | torch.device = "cpu", calibrated: bool = True
    ) -> SequenceModel:
        """Load a folder written by :meth:`save_pretrained`."""
        folder = Path(path)
        head = read_head_config(folder)
        Head.weights_file(folder)  # before the backbone: the folder is incomplete either way
        model = cls(HyenaDNA.from_pretrained(folder, map_location=map_location), head)
        model.head.load_pretrained(folder, map_location)
        if calibrated:  # else the raw model, its calibration.json unread
            model.load_calibration(folder)
        return model
