"""The residual block of HyenaDNA: pre-norm Hyena mixer and MLP around a float32 stream.

The block follows the reference's fused layout, ``dropout -> add -> LayerNorm -> mixer ->
dropout -> add -> LayerNorm -> MLP``, and returns both the MLP output and the residual
stream; the next block (or the final norm) adds them. Keeping the residual stream in float32
keeps many layers of small updates from rounding away under bf16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from hyenadna.config import HyenaConfig
from hyenadna.modules.operator import HyenaOperator
from hyenadna.ops.hyena_mixer import hand_written_backward_applies
from hyenadna.ops.mlp import gelu_mlp


class Mlp(nn.Module):
    """Position-wise feed-forward layer with tanh-approximated GELU. In float32/float64
    training without autocast it runs as :func:`hyenadna.ops.mlp.gelu_mlp`, which saves less
    for the backward pass and checkpoints without a wasted second ``fc2``."""

    def __init__(self, d_model: int, d_inner: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)

    def forward(self, x: torch.Tensor, recompute: bool = False) -> torch.Tensor:
        if torch.is_grad_enabled() and hand_written_backward_applies(x, self.fc1.weight):
            pairs = [(layer.weight, layer.bias) for layer in (self.fc1, self.fc2)]
            return gelu_mlp(x, pairs[0], pairs[1], recompute)
        if recompute and torch.is_grad_enabled():
            return checkpoint(self._forward_autograd, x, use_reentrant=False)
        return self._forward_autograd(x)

    def _forward_autograd(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    """One HyenaDNA layer; ``forward(hidden, residual) -> (hidden, residual)``."""

    def __init__(self, config: HyenaConfig, layer_idx: int) -> None:
        super().__init__()
        self.residual_in_fp32 = config.residual_in_fp32
        self.checkpoint_mixer = config.checkpoint_mixer
        self.checkpoint_mlp = config.checkpoint_mlp
        # the first block's input dropout is the embedding dropout
        self.dropout1 = nn.Dropout(config.embed_dropout if layer_idx == 0 else config.resid_dropout)
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mixer = HyenaOperator(config)
        self.dropout2 = nn.Dropout(config.resid_dropout)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mlp = Mlp(config.d_model, config.d_inner)

    def _run(self, layer: nn.Module, x: torch.Tensor, recompute: bool) -> torch.Tensor:
        return layer(x, recompute=recompute and self.training)

    def _add_norm(
        self, hidden: torch.Tensor, residual: torch.Tensor | None, dropout: nn.Module, norm: nn.LayerNorm
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dropped = dropout(hidden)
        residual = dropped if residual is None else dropped + residual
        normed = norm(residual.to(norm.weight.dtype))
        if self.residual_in_fp32:
            residual = residual.to(torch.float32)
        return normed, residual

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        normed, residual = self._add_norm(hidden, residual, self.dropout1, self.norm1)
        hidden = self._run(self.mixer, normed, self.checkpoint_mixer)
        normed, residual = self._add_norm(hidden, residual, self.dropout2, self.norm2)
        hidden = self._run(self.mlp, normed, self.checkpoint_mlp)
        return hidden, residual
