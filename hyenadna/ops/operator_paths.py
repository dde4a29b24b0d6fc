"""Fast forms of the Hyena operator beside :func:`hyenadna.ops.hyena_mixer.hyena_mixer` (fused
training) and the chunked inference pieces: all compute
:func:`hyenadna.ops.reference.hyena_operator_ref`, and :func:`hyenadna.ops.dispatch.choose_path`
says which runs. Every function takes the weights as the reference does, gathered in an
:class:`~hyenadna.ops.reference.OperatorWeights`: ``in_proj``, ``short_conv`` and ``out_proj``
(weight, bias) pairs, filters ``k`` (order-1, d, L), skip terms ``d_skip`` (order-1, d) or
``None``, and the recurrence order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hyenadna.ops.fftconv import fftconv
from hyenadna.ops.reference import OperatorWeights, check_conv_shapes
from hyenadna.ops.short_conv import short_conv as short_conv_fn


def _skip(d_skip: torch.Tensor | None, step: int) -> torch.Tensor | None:
    return None if d_skip is None else d_skip[step]


def operator_channels_last(x: torch.Tensor, weights: OperatorWeights, k_f: torch.Tensor | None = None) -> torch.Tensor:
    """Grad-free inference in the projections' layout (B, L, C): no transposes around the short
    convolution (shifted multiply-adds) and one contiguous copy per long convolution. ``k_f``:
    the filters' spectra (order-1, d, F) when cached."""
    in_proj, short_conv, k, d_skip, out_proj, order = weights
    u = short_conv_fn(F.linear(x, *in_proj), *short_conv)  # (B, L, (order+1) d)
    *gates, v = u.split(x.shape[-1], dim=-1)
    for step in range(order - 1):
        spectrum = None if k_f is None else k_f[step]
        v = fftconv(v * gates[order - 1 - step], k[step], _skip(d_skip, step), k_f=spectrum, channels_last=True)
    return F.linear(v * gates[0], *out_proj)


def operator_channels_first(x: torch.Tensor, weights: OperatorWeights, triton: bool = False) -> torch.Tensor:
    """Plain autograd in the FFT's layout (B, C, L): half precision and autocast, and with
    ``triton`` the GPU kernels, which take over the short convolution with the split
    (:mod:`hyenadna.ops.triton.short_conv`) and the last, gated, long convolution
    (:func:`gated_fftconv`)."""
    in_proj, short_conv, k, d_skip, out_proj, order = weights
    d = x.shape[-1]
    z = F.linear(x, *in_proj)
    if triton:  # short conv, transpose, split: one kernel
        from hyenadna.ops.triton.short_conv import short_conv_split_triton

        *gates, v = short_conv_split_triton(z, *short_conv, d)
    else:
        *gates, v = short_conv_fn(z, *short_conv).transpose(1, 2).split(d, dim=1)
    last = order - 2
    for step in range(last):
        v = fftconv(v * gates[order - 1 - step], k[step], _skip(d_skip, step))
    v = gated_fftconv(gates[0], gates[1], v, k[last], _skip(d_skip, last), triton)
    return F.linear(v.transpose(1, 2), *out_proj)


def gated_fftconv(
    x0: torch.Tensor, x1: torch.Tensor, v: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None, triton: bool = False
) -> torch.Tensor:
    """``x0 * (k * (x1 * v) + D * x1 * v)`` for (B, C, L) inputs: the last step of the Hyena
    recurrence with both gates. The fused Triton kernels with ``triton``, else
    ``x0 * fftconv(x1 * v, k, d)``."""
    if triton:
        from hyenadna.ops.triton.gated_conv import gated_fftconv_triton

        check_conv_shapes(x1, k, d)
        return gated_fftconv_triton(x0, x1, v, k, d)
    return x0 * fftconv(x1 * v, k, d)
