"""The block's feed-forward layer, ``fc2(gelu_tanh(fc1(x)))``, as one autograd function.

Plain autograd keeps both the pre-activation and the GELU output (two (B, L, 4 d) tensors,
the largest of a block); this function keeps the pre-activation only and recomputes the GELU
in the backward pass, one elementwise pass for a quarter of the block's saved memory. With
``recompute`` it keeps just the input and recomputes ``fc1`` as well: activation
checkpointing without the second forward through ``fc2`` that generic checkpointing runs
and the backward pass never uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _GeluMlp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fc1_weight, fc1_bias, fc2_weight, fc2_bias, recompute: bool):
        hidden = F.linear(x, fc1_weight, fc1_bias)
        out = F.linear(F.gelu(hidden, approximate="tanh"), fc2_weight, fc2_bias)
        ctx.has_biases = (fc1_bias is not None, fc2_bias is not None)
        ctx.save_for_backward(x, fc1_weight, fc1_bias, fc2_weight, None if recompute else hidden)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, fc1_weight, fc1_bias, fc2_weight, hidden = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if hidden is None:
            hidden = F.linear(x, fc1_weight, fc1_bias)
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
        grad_fc2_weight = grad_fc2_bias = None
        if needs[3]:
            activation = F.gelu(hidden, approximate="tanh")
            grad_fc2_weight = grad_rows.t() @ activation.reshape(-1, activation.shape[-1])
            del activation
        if needs[4] and ctx.has_biases[1]:
            grad_fc2_bias = grad_rows.sum(0)
        grad_hidden = torch.ops.aten.gelu_backward(grad_out @ fc2_weight, hidden, approximate="tanh")
        del hidden
        hidden_rows = grad_hidden.reshape(-1, grad_hidden.shape[-1])
        grad_x = grad_hidden @ fc1_weight if needs[0] else None
        grad_fc1_weight = hidden_rows.t() @ x.reshape(-1, x.shape[-1]) if needs[1] else None
        grad_fc1_bias = hidden_rows.sum(0) if needs[2] and ctx.has_biases[0] else None
        return grad_x, grad_fc1_weight, grad_fc1_bias, grad_fc2_weight, grad_fc2_bias, None


def gelu_mlp(
    x: torch.Tensor,
    fc1: tuple[torch.Tensor, torch.Tensor | None],
    fc2: tuple[torch.Tensor, torch.Tensor | None],
    recompute: bool = False,
) -> torch.Tensor:
    """``fc2(gelu_tanh(fc1(x)))`` with ``nn.Linear`` (weight, bias) pairs, differentiable,
    saving less than autograd (see the module docstring)."""
    return _GeluMlp.apply(x, *fc1, *fc2, recompute)
