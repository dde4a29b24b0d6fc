"""Task heads on a HyenaDNA backbone: pooling, a linear head, reverse-complement conjoining.

A fine-tuned model is saved self-contained in one folder:

* ``config.json`` + ``model.safetensors``: the (fine-tuned) backbone in our usual format, so
  ``hyenadna.load(folder)`` still gives a plain ``HyenaDNA`` for embedding;
* ``head.safetensors``: the head's weights;
* ``task.json``: pooling, layer, RC conjoining and the label vocabulary (task and names).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from hyenadna.atomic import atomic_write, atomic_write_text
from hyenadna.errors import HyenaDNAError
from hyenadna.masking import to_right_padding
from hyenadna.model import HyenaDNA
from hyenadna.modules.pooling import POOLINGS, pool, reverse_complement_batch, reverse_complement_onehot

TASK_FILE, HEAD_FILE = "task.json", "head.safetensors"
TASKS = ("multiclass", "multilabel", "regression")


@dataclass
class HeadConfig:
    """How a head reads the backbone, and what it predicts.

    Attributes:
        task: ``multiclass`` (softmax over ``labels``), ``multilabel`` (a sigmoid per label) or
            ``regression`` (one value per name in ``labels``).
        labels: class names, or regression target names, in output order.
        pooling: ``mean`` over real tokens, ``last`` / ``first`` real token, or ``max``.
        layer: which hidden state to pool (-1: the final normalised one).
        rc_conjoin: average the logits of each sequence and of its reverse complement.
        dropout: dropout on the pooled vector during training.
        train_length: the longest training sequence in bases (None: not recorded); the window
            that scoring variants through the head uses by default.
    """

    task: str
    labels: list[str]
    pooling: str = "mean"
    layer: int = -1
    rc_conjoin: bool = False
    dropout: float = 0.1
    train_length: int | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise HyenaDNAError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.pooling not in POOLINGS:
            raise HyenaDNAError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not self.labels:
            raise HyenaDNAError("a head needs at least one label or target name")

    @property
    def num_outputs(self) -> int:
        return len(self.labels)


class TaskModel(nn.Module):
    """What every fine-tunable model shares: ``forward(input_ids, attention_mask)`` gives logits
    (averaged with the reverse complement's when the head conjoins), ``predict_outputs`` turns
    them into probabilities or values. Subclasses define ``_one_strand`` and ``head_config``."""

    head_config: HeadConfig

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
        return task_outputs(self.head_config.task, logits)

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
    """Backbone + pooling + linear head: ``model(input_ids, attention_mask)`` gives (B, outputs) logits."""

    def __init__(self, backbone: HyenaDNA, head: HeadConfig) -> None:
        super().__init__()
        n = backbone.config.n_layer
        if not -n - 1 <= head.layer <= n:
            raise HyenaDNAError(f"layer {head.layer} out of range for a backbone with {n} layers")
        self.backbone = backbone
        self.head_config = head
        self.dropout = nn.Dropout(head.dropout)
        self.head = nn.Linear(backbone.config.d_model, head.num_outputs)
        nn.init.normal_(self.head.weight, std=backbone.config.initializer_range)
        nn.init.zeros_(self.head.bias)

    def _one_strand(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # the mask makes padded rows exact (either padding side): a row's logits do not depend on its batch
        hidden = self.backbone.hidden_states(input_ids, layer=self.head_config.layer, attention_mask=attention_mask)
        pooled = pool(hidden, attention_mask, self.head_config.pooling)
        return self.head(self.dropout(pooled.to(self.head.weight.dtype)))

    def _one_strand_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        aligned, shift = to_right_padding(input_ids, attention_mask)
        if shift is not None:  # the hook below sees the right-aligned rows the backbone runs
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            index = (positions + shift[:, None]) % input_ids.shape[1]
            onehot = onehot.gather(1, index.unsqueeze(-1).expand_as(onehot))
            input_ids, attention_mask = aligned, attention_mask.gather(1, index)
        with self.backbone.bases_from_onehot(onehot, input_ids):
            return self._one_strand(input_ids, attention_mask)

    @property
    def max_length(self) -> int:
        return self.backbone.config.l_max

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the backbone (our format), the head weights and ``task.json`` into ``path``."""
        from safetensors.torch import save_file

        folder = Path(path)
        self.backbone.save_pretrained(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        atomic_write(folder / HEAD_FILE, lambda tmp: save_file(state, str(tmp)))
        atomic_write_text(folder / TASK_FILE, json.dumps(asdict(self.head_config), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> SequenceModel:
        """Load a folder written by :meth:`save_pretrained`."""
        from safetensors.torch import load_file

        folder = Path(path)
        head = read_head_config(folder)
        model = cls(HyenaDNA.from_pretrained(folder, map_location=map_location), head)
        state = load_file(str(folder / HEAD_FILE), device=str(map_location))
        try:
            model.head.load_state_dict(state)
        except RuntimeError as exc:
            raise HyenaDNAError(f"{folder / HEAD_FILE}: head weights do not match task.json ({exc})") from None
        return model


def task_outputs(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities (softmax or sigmoid) for classification, values for regression; in float32
    or wider (float64 logits stay float64)."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if task == "multiclass":
        return logits.softmax(-1)
    if task == "multilabel":
        return logits.sigmoid()
    return logits


def read_head_config(folder: Path) -> HeadConfig:
    """The ``task.json`` of a fine-tuned model folder."""
    task_file = Path(folder) / TASK_FILE
    if not task_file.is_file():
        raise HyenaDNAError(f"{folder}: no {TASK_FILE}; this is not a fine-tuned model folder")
    try:
        return HeadConfig(**json.loads(task_file.read_text()))
    except (TypeError, json.JSONDecodeError) as exc:
        raise HyenaDNAError(f"{task_file}: not a valid task file ({exc})") from None
