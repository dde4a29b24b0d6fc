"""Causal depthwise short convolution over the length axis, channels last: (B, L, C) -> (B, L, C).

``y[t, c] = b[c] + sum_j w[c, j] * x[t - (K-1) + j, c]`` (zeros before the start), what
``Conv1d(C, C, K, groups=C, padding=K-1)`` computes when its output is cut to the first L
positions. The fast path works in the (B, L, C) layout the projections produce, as K
fused multiply-adds over shifted views, with no transposes and no im2col buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hyenadna.errors import HyenaDNAError


def _check(x: torch.Tensor, weight: torch.Tensor) -> None:
    if x.dim() != 3 or weight.dim() != 3 or weight.shape[1] != 1 or weight.shape[0] != x.shape[-1]:
        raise HyenaDNAError(
            f"short_conv expects x (B, L, C) and weight (C, 1, K), got {tuple(x.shape)} and {tuple(weight.shape)}"
        )


def short_conv_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The plain reference: transpose, ``F.conv1d`` with padding K-1, cut, transpose back."""
    _check(x, weight)
    length, taps = x.shape[1], weight.shape[-1]
    y = F.conv1d(x.transpose(1, 2), weight, bias, padding=taps - 1, groups=x.shape[-1])[..., :length]
    return y.transpose(1, 2)


def short_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, previous: torch.Tensor | None = None
) -> torch.Tensor:
    """Causal depthwise convolution in the channels-last layout (the fast path).

    ``previous`` (B, K-1, C): the inputs just before ``x`` when ``x`` continues a longer
    sequence (the chunked inference path), instead of the zeros before the start.
    """
    _check(x, weight)
    taps = weight.shape[-1]
    if previous is not None and previous.shape != (x.shape[0], taps - 1, x.shape[-1]):
        raise HyenaDNAError(f"short_conv expects previous (B, K-1, C), got {tuple(previous.shape)}")
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        # for training, Conv1d's fused backward beats autograd through shifted views
        if previous is None:
            return short_conv_ref(x, weight, bias)
        return short_conv_ref(torch.cat([previous, x], dim=1), weight, bias)[:, taps - 1 :]
    w = weight[:, 0, :].to(x.dtype)  # (C, K); tap K-1 multiplies x[t]
    y = x * w[:, taps - 1] if bias is None else torch.addcmul(bias.to(x.dtype), x, w[:, taps - 1])
    for shift in range(1, taps):
        tap = w[:, taps - 1 - shift]
        if shift < x.shape[1]:
            y[:, shift:].addcmul_(x[:, :-shift], tap)
        if previous is not None:  # outputs t < shift reach back to previous[K-1-shift+t]
            head = min(shift, x.shape[1])
            y[:, :head].addcmul_(previous[:, taps - 1 - shift : taps - 1 - shift + head], tap)
    return y
