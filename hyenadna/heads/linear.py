"""The linear head: the hidden states pooled into one vector per sequence, then one linear layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyenadna.heads.base import Head
from hyenadna.modules.pooling import pool

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig
    from hyenadna.model.hyena_dna import HyenaDNA


class LinearHead(Head):
    """``weight @ dropout(features) + bias``, the features being the pooled hidden states
    (``pooling``: mean over real tokens, first, last or max). Subclasses change the features."""

    kind = "linear"

    def __init__(
        self, backbone: HyenaDNA, config: HeadConfig, features: int | None = None, std: float | None = None
    ) -> None:
        """``features`` wide inputs (default: the backbone's width), weights drawn N(0, ``std``)
        (default: the backbone's ``initializer_range``), zero biases."""
        super().__init__(backbone, config)
        # drawn through nn.Linear, so a seeded model starts from the weights it always did
        layer = nn.Linear(features or backbone.config.d_model, config.num_outputs)
        nn.init.normal_(layer.weight, std=backbone.config.initializer_range if std is None else std)
        nn.init.zeros_(layer.bias)
        self.weight, self.bias = layer.weight, layer.bias  # head.safetensors keys: weight, bias

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, features) read from the hidden states (B, L, D)."""
        return pool(hidden, attention_mask, self.config.pooling).to(self.weight.dtype)

    def forward(
        self, hidden: Tensor, attention_mask: Tensor, input_ids: Tensor, onehot: Tensor | None = None
    ) -> Tensor:
        return F.linear(self.dropout(self.features(hidden, attention_mask)), self.weight, self.bias)
