"""The block's feed-forward layer, ``fc2(gelu_tanh(fc1(x)))``, as one autograd function.

Plain autograd keeps both the pre-activation and the GELU output (two (B, L, 4 d) tensors,
the largest of a block); this function keeps the pre-activation only and recomputes the GELU
in the backward pass, one elementwise pass for a quarter of the block's saved memory. With
``recompute`` it keeps just the input and recomputes ``fc1`` as well: activation
checkpointing without the second forward through ``fc2`` that generic checkpointing runs
and the backward pass never uses.

With a low-precision ``dtype`` (bfloat16 under CPU autocast, :mod:`hyenadna.ops.precision`)
the hidden layer lives in that dtype, as autocast would keep it (``F.linear``'s output, and the
GELU of it), while the input, the output and every gradient handed back stay in ``x``'s dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hyenadna.ops.precision import cast


class _GeluMlp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fc1_weight, fc1_bias, fc2_weight, fc2_bias, recompute: bool, dtype):
        with torch.autocast(x.device.type, enabled=False):  # every cast is explicit (``dtype``)
            hidden = F.linear(cast(x, dtype), cast(fc1_weight, dtype), cast(fc1_bias, dtype))
            activation = F.gelu(hidden, approximate="tanh")
            out = F.linear(activation, cast(fc2_weight, dtype), cast(fc2_bias, dtype))
        ctx.has_biases = (fc1_bias is not None, fc2_bias is not None)
        ctx.dtype = dtype
        # low precision: the GELU's output too (both together the size of one float32 hidden
        # layer), sparing two elementwise passes in the backward
        kept = (None, None) if recompute else (hidden, activation if dtype is not None else None)
        ctx.save_for_backward(x, fc1_weight, fc1_bias, fc2_weight, *kept)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        with torch.autocast(grad_out.device.type, enabled=False):
            return _GeluMlp.backward_(ctx, grad_out)

    @staticmethod
    def backward_(ctx, grad_out):
        x, fc1_weight, fc1_bias, fc2_weight, hidden, activation = ctx.saved_tensors
        needs, dtype, full = ctx.needs_input_grad, ctx.dtype, x.dtype
        low_x, fc1_low, fc2_low = cast(x, dtype), cast(fc1_weight, dtype), cast(fc2_weight, dtype)
        if hidden is None:
            hidden = F.linear(low_x, fc1_low, cast(fc1_bias, dtype))
        grad_out = cast(grad_out, dtype)
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
        grad_fc2_weight = grad_fc2_bias = None
        if needs[3]:
            if activation is None:
                activation = F.gelu(hidden, approximate="tanh")
            grad_fc2_weight = (grad_rows.t() @ activation.reshape(-1, activation.shape[-1])).to(full)
            del activation
        if needs[4] and ctx.has_biases[1]:
            grad_fc2_bias = grad_rows.sum(0, dtype=full)
        grad_hidden = torch.ops.aten.gelu_backward(grad_out @ fc2_low, hidden, approximate="tanh")
        del hidden
        hidden_rows = grad_hidden.reshape(-1, grad_hidden.shape[-1])
        grad_x = (grad_hidden @ fc1_low).to(full) if needs[0] else None
        grad_fc1_weight = (hidden_rows.t() @ low_x.reshape(-1, x.shape[-1])).to(full) if needs[1] else None
        grad_fc1_bias = hidden_rows.sum(0, dtype=full) if needs[2] and ctx.has_biases[0] else None
        return grad_x, grad_fc1_weight, grad_fc1_bias, grad_fc2_weight, grad_fc2_bias, None, None


def gelu_mlp(
    x: torch.Tensor,
    fc1: tuple[torch.Tensor, torch.Tensor | None],
    fc2: tuple[torch.Tensor, torch.Tensor | None],
    recompute: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``fc2(gelu_tanh(fc1(x)))`` with ``nn.Linear`` (weight, bias) pairs, differentiable,
    saving less than autograd (see the module docstring); ``dtype``: the hidden layer's and the
    products' dtype (``None``: ``x``'s)."""
    return _GeluMlp.apply(x, *fc1, *fc2, recompute, dtype)
