"""The linear head: the hidden states pooled into one vector per sequence, then one linear layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyenadna.heads.base import Head, state_width
from hyenadna.modules.pooling import pool

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig
    from hyenadna.model.hyena_dna import HyenaDNA


class LinearHead(Head):
    """``weight @ dropout(features) + bias``, the features being the pooled hidden states
    (``pooling``: mean over real tokens, first, last, max or the middle base), or with ``hidden`` units
    ``weight @ dropout(gelu(hidden_layer(dropout(features)))) + bias`` (the hidden layer of
    Hugging Face's sequence-classification heads). Subclasses change the features."""

    kind = "linear"

    def __init__(
        self, backbone: HyenaDNA, config: HeadConfig, features: int | None = None, std: float | None = None
    ) -> None:
        """``features`` wide inputs (default: the width of a state, :func:`state_width`), output
        weights drawn N(0, ``std``) (default: the backbone's ``initializer_range``), zero biases.
        With ``config.hidden``, a hidden layer (PyTorch's default initialisation) and GELU come
        first, and the output layer reads its ``hidden`` units."""
        super().__init__(backbone, config)
        width = features or state_width(backbone, config)
        if config.hidden:
            self.hidden_layer = nn.Linear(width, config.hidden)  # head.safetensors keys: hidden_layer.*
            width, std = config.hidden, None
        # drawn through nn.Linear, so a seeded model starts from the weights it always did
        layer = nn.Linear(width, config.num_outputs)
        nn.init.normal_(layer.weight, std=backbone.config.initializer_range if std is None else std)
        nn.init.zeros_(layer.bias)
        self.weight, self.bias = layer.weight, layer.bias  # head.safetensors keys: weight, bias

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, features) read from the hidden states (B, L, D)."""
        return pool(hidden, attention_mask, self.config.pooling).to(self.weight.dtype)

    def forward(
        self, hidden: Tensor, attention_mask: Tensor, input_ids: Tensor, onehot: Tensor | None = None
    ) -> Tensor:
        read = self.dropout(self.features(hidden, attention_mask))
        if self.config.hidden:
            read = self.dropout(F.gelu(self.hidden_layer(read)))
        return F.linear(read, self.weight, self.bias)
