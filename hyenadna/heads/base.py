"""The one interface every task head has, so that the task model, the training loop and the
loaders never ask which kind of head they hold.

A head is built from the backbone and its :class:`~hyenadna.heads.config.HeadConfig`; it turns
the backbone's hidden states into (B, outputs) logits, defines the loss it is trained by,
finishes its initialisation from the training targets, says how long an input it takes, and
saves and loads its own weights (``head.safetensors``). A new kind is one subclass, registered
by name in :mod:`hyenadna.heads.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write
from hyenadna.io.checkpoint import check_finite

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig
    from hyenadna.model.hyena_dna import HyenaDNA

HEAD_FILE = "head.safetensors"


class Head(nn.Module):
    """Base of the task heads. ``kind`` is the name ``task.json`` records and the registry
    looks up; ``dropout`` applies to what the head reads, in training only."""

    kind: ClassVar[str]

    def __init__(self, backbone: HyenaDNA, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(config.dropout)

    @classmethod
    def check(cls, config: HeadConfig) -> None:
        """Refuse settings this kind cannot serve (raised as the config is read: CLI or task.json)."""

    def forward(
        self, hidden: Tensor, attention_mask: Tensor, input_ids: Tensor, onehot: Tensor | None = None
    ) -> Tensor:
        """(B, outputs) logits from the hidden states (B, L, D) of ``input_ids`` (B, L).
        ``onehot`` (B, L, 4), when given, holds the bases as the backbone read them (possibly
        soft, for attribution): a head that reads bases must read them there."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The loss fine-tuning minimises; by default the task's (:func:`task_loss`)."""
        return task_loss(self.config.task, logits, target)

    def start_from_targets(self, targets: np.ndarray) -> None:
        """Finish the initialisation from the training targets (one row per training sequence),
        called once before fine-tuning; most heads need nothing from them."""

    def max_length(self, backbone: HyenaDNA) -> int:
        """The longest input in tokens: the backbone's unless the head reads fixed positions."""
        return backbone.config.l_max

    def save_pretrained(self, folder: Path) -> None:
        """Write this head's weights (and buffers) to ``folder/head.safetensors``."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write(Path(folder) / HEAD_FILE, lambda tmp: save_file(state, str(tmp)))

    @staticmethod
    def weights_file(folder: Path) -> Path:
        """``folder/head.safetensors``, refused by name when absent (checked before the backbone loads)."""
        path = Path(folder) / HEAD_FILE
        if not path.is_file():
            raise HyenaDNAError(
                f"{folder}: no {HEAD_FILE}; this fine-tuned model folder is incomplete (copy it whole, "
                "or fine-tune again)"
            )
        return path

    def load_pretrained(self, folder: Path, map_location: str | torch.device = "cpu") -> None:
        """Load weights written by :meth:`save_pretrained`, every one checked finite and matching."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.weights_file(folder)
        try:
            state = load_file(str(path), device=str(map_location))
        except (SafetensorError, OSError) as exc:
            raise HyenaDNAError(f"{path}: cannot read head weights: {exc}") from None
        check_finite(state, path)
        try:
            self.load_state_dict(state)
        except RuntimeError as exc:
            raise HyenaDNAError(f"{path}: head weights do not match task.json ({exc})") from None


def state_width(backbone: HyenaDNA, config: HeadConfig) -> int:
    """The width of each position's state a head reads: the backbone's, twice it when
    ``bidirectional`` joins the reverse strand's."""
    return backbone.config.d_model * (2 if config.bidirectional else 1)


def task_outputs(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities (softmax or sigmoid) for classification, values for regression; in float32
    or wider (float64 logits stay float64)."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if task == "multiclass":
        return logits.softmax(-1)
    if task == "multilabel":
        return logits.sigmoid()
    return logits


def task_loss(task: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (multiclass), binary cross-entropy (multilabel) or MSE (regression), in float32."""
    logits = logits.float()
    if task == "multiclass":
        return F.cross_entropy(logits, target)
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, target.float())
    return F.mse_loss(logits, target.float())
