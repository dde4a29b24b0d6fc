"""Baselines for benchmarks/long_context.py, written plainly, sharing our model's weights.

* :func:`reference_hidden_states` follows the arithmetic of HazyResearch's HyenaDNA code: the
  implicit filter is recomputed on every call, the long convolution is a real FFT of size
  exactly 2L with the filter spectrum divided by 2L, the (B, L, D) activations are transposed
  to (B, D, L) for a ``Conv1d`` short filter and back for the output projection, and nothing is
  chunked or cached.
* :class:`AttentionLM` is the same pre-norm block shape (width, depth, MLP, tied head) with causal
  multi-head attention through ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _reference_filter(f, length: int) -> torch.Tensor:
    h = f.z[:length]
    for linear in f.mlp[:-1]:
        h = torch.sin(f.freq * linear(h))
    h = f.mlp[-1](h)
    if f.modulate:
        h = h * (torch.exp(-f.t[:length] * f.deltas.abs()) + f.modulation_shift)
    return h  # (L, channels)


def _reference_fftconv(u: torch.Tensor, k: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    length = u.shape[-1]
    n = 2 * length
    k_f = torch.fft.rfft(k, n=n) / n
    u_f = torch.fft.rfft(u, n=n)
    y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :length]
    return y + u * d.unsqueeze(-1)


def _reference_mixer(op, x: torch.Tensor) -> torch.Tensor:
    length = x.shape[1]
    u = op.in_proj(x).transpose(1, 2)  # "b l d -> b d l"
    u = op.short_conv(u)[..., :length]
    *gates, v = u.split(op.d_model, dim=1)
    steps = op.order - 1
    k = _reference_filter(op.filter, length).t().reshape(op.d_model, steps, length).transpose(0, 1)
    bias = op.d_skip.reshape(op.d_model, steps).t()
    for step, gate in enumerate(reversed(gates[1:])):
        v = _reference_fftconv(v * gate, k[step], bias[step])
    return op.out_proj((v * gates[0]).transpose(1, 2))


def reference_hidden_states(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Final normalised hidden states of ``model`` (a hyenadna.HyenaDNA) computed the reference's way."""
    hidden = model.token_embedding(input_ids)
    residual = None
    for block in model.blocks:
        residual = hidden if residual is None else hidden + residual
        hidden = _reference_mixer(block.mixer, block.norm1(residual))
        residual = hidden + residual
        hidden = block.mlp(block.norm2(residual))
    return model.final_norm(hidden + residual)


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
