"""Causal depthwise short convolution over the length axis, in either layout.

``y[t, c] = b[c] + sum_j w[c, j] * x[t - (K-1) + j, c]`` (zeros before the start), what
``Conv1d(C, C, K, groups=C, padding=K-1)`` computes when its output is cut to the first L
positions (:func:`hyenadna.ops.reference.short_conv_ref`). The fast path runs K fused
multiply-adds over shifted views, in whichever layout the caller holds: channels last
(B, L, C), the projections' own, or channel rows (B, C, L), the FFT's; no transposes and no
im2col buffer. Under autograd it takes ``Conv1d``, whose fused backward beats autograd through
shifted views; the fused training function differentiates it by hand
(:func:`short_conv_backward`).
"""

from __future__ import annotations

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.ops.reference import short_conv_ref


def short_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    previous: torch.Tensor | None = None,
    channels_last: bool = True,
) -> torch.Tensor:
    """Causal depthwise convolution of x (B, L, C), or (B, C, L) with ``channels_last=False``.

    ``previous`` (in x's layout, K-1 positions long): the inputs just before ``x`` when ``x``
    continues a longer sequence (the chunked inference path), instead of the zeros before the
    start.
    """
    rows = x if channels_last else x.transpose(1, 2)  # (B, L, C) views
    before = None if previous is None else previous if channels_last else previous.transpose(1, 2)
    if x.dim() != 3 or weight.dim() != 3 or weight.shape[1] != 1 or weight.shape[0] != rows.shape[-1]:
        raise HyenaDNAError(
            f"short_conv expects x (B, L, C) or (B, C, L) and weight (C, 1, K), got {tuple(x.shape)} and "
            f"{tuple(weight.shape)}"
        )
    taps = weight.shape[-1]
    if before is not None and before.shape != (x.shape[0], taps - 1, rows.shape[-1]):
        raise HyenaDNAError(f"short_conv expects previous (B, K-1, C) in x's layout, got {tuple(previous.shape)}")
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        whole = rows if before is None else torch.cat([before, rows], 1)
        y = short_conv_ref(whole, weight, bias)[:, whole.shape[1] - rows.shape[1] :]
        return y if channels_last else y.transpose(1, 2)
    axis = 1 if channels_last else 2
    length = x.shape[axis]
    w = weight[:, 0, :].to(x.dtype)  # (C, K); tap K-1 multiplies x[t]
    if not channels_last:
        w = w[:, :, None]  # broadcast along the rows
    if bias is None:
        y = x * w[:, taps - 1]
    else:
        y = torch.addcmul(bias.to(x.dtype) if channels_last else bias.to(x.dtype)[:, None], x, w[:, taps - 1])
    for shift in range(1, taps):
        tap = w[:, taps - 1 - shift]
        if shift < length:
            y.narrow(axis, shift, length - shift).addcmul_(x.narrow(axis, 0, length - shift), tap)
        if previous is not None:  # outputs t < shift reach back to previous[K-1-shift+t]
            head = min(shift, length)
            y.narrow(axis, 0, head).addcmul_(previous.narrow(axis, taps - 1 - shift, head), tap)
    return y


def short_conv_backward(
    grad_u: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, needs: tuple[bool, bool, bool]
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of :func:`short_conv` on rows (B, C, L) for (input, weight, bias): the input's
    is the anti-causal convolution with the same taps; tap ``K-1-s``'s is the dot product of
    the output gradient with the input shifted by s, over batch and positions."""
    taps, length = weight.shape[-1], z.shape[-1]
    w = weight[:, 0, :, None]
    grad_z = grad_weight = grad_bias = None
    if needs[0]:
        grad_z = grad_u * w[:, taps - 1]
        for shift in range(1, min(taps, length)):
            grad_z[..., :-shift].addcmul_(grad_u[..., shift:], w[:, taps - 1 - shift])
    if needs[1]:
        grad_weight = torch.zeros_like(weight)
        for shift in range(min(taps, length)):
            dots = torch.linalg.vecdot(grad_u[..., shift:], z[..., : length - shift], dim=-1)
            grad_weight[:, 0, taps - 1 - shift] = dots.sum(0)
    if needs[2]:
        grad_bias = grad_u.sum((0, 2))
    return grad_z, grad_weight, grad_bias
