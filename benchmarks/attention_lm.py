"""The attention baseline of benchmarks/long_context.py: :class:`AttentionLM`, HyenaDNA's pre-norm
block shape (width, depth, MLP, tied head) with causal multi-head attention through
``torch.nn.functional.scaled_dot_product_attention``.

(The ``reference`` baseline is this package's own plain reference, ``fftconv_impl="ref"``:
:func:`hyenadna.ops.reference.hyena_operator_ref` in every layer, HyenaDNA's arithmetic.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _AttentionBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, d_inner: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.fc1, self.fc2 = nn.Linear(d_model, d_inner), nn.Linear(d_inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, d // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.out(y.transpose(1, 2).reshape(b, length, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class AttentionLM(nn.Module):
    """A causal transformer in HyenaDNA's block shape (no positional encoding: speed is what we measure)."""

    def __init__(self, d_model: int, n_layer: int, d_inner: int, heads: int = 8, vocab: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.blocks = nn.ModuleList(_AttentionBlock(d_model, heads, d_inner) for _ in range(n_layer))
        self.norm = nn.LayerNorm(d_model)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02 / math.sqrt(2))

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.linear(self.hidden_states(input_ids), self.embed.weight)
