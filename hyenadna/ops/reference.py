"""The plain reference of the Hyena operator: every fast path is tested against it.

Written to be read, not to be fast: HyenaDNA's own arithmetic (a ``Conv1d`` short filter on
transposed activations, long convolutions through a real FFT of size exactly 2L, the output cut
to L), with plain autograd, in any float dtype (float64 makes it the yardstick for the float32
paths). ``HyenaConfig(fftconv_impl="ref")`` runs the model through it.

For an input x (B, L, d) and recurrence order N (the weights in ``nn.Linear`` / depthwise
``nn.Conv1d`` layout):

1. ``u = short_conv(in_proj(x))``, split into gates g_0 .. g_{N-1} and a value v;
2. for each step o = 0 .. N-2: ``v <- k_o * (g_{N-1-o} ⊙ v) + D_o ⊙ (g_{N-1-o} ⊙ v)``;
3. ``out_proj(g_0 ⊙ v)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from hyenadna.errors import HyenaDNAError

Pair = tuple[torch.Tensor, torch.Tensor | None]  # (weight, bias) of a layer


class OperatorWeights(NamedTuple):
    """What every form of the operator takes beside its input, in :func:`hyena_operator_ref`'s
    order (``hyena_operator_ref(x, *weights)``)."""

    in_proj: Pair
    short_conv: Pair
    k: torch.Tensor
    d_skip: torch.Tensor | None
    out_proj: Pair
    order: int


def fft_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any operand is float64, else float32 (never a half type: half-precision FFTs
    of long signals lose the small late filter taps that carry long-range information)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def check_conv_shapes(u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None) -> None:
    """u (..., C, L), k (C, L) and D (C,) or None, else a clear error."""
    if u.dim() < 2 or k.dim() != 2 or u.shape[-2:] != k.shape:
        raise HyenaDNAError(
            f"fftconv expects u (..., C, L) and k (C, L) of the same C and L, got u "
            f"{tuple(u.shape)} and k {tuple(k.shape)}"
        )
    if d is not None and d.shape != k.shape[:1]:
        raise HyenaDNAError(f"fftconv expects D of shape ({k.shape[0]},), got {tuple(d.shape)}")


def fftconv_ref(u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
    """Causal convolution ``k * u + D ⊙ u`` of rows u (..., C, L) with filters k (C, L), through
    a real FFT of size 2L (HyenaDNA's arithmetic); the result keeps ``u``'s dtype."""
    check_conv_shapes(u, k, d)
    length = u.shape[-1]
    n = 2 * length
    dtype = fft_dtype(u, k)
    with torch.autocast(u.device.type, enabled=False):
        k_f = torch.fft.rfft(k.to(dtype), n=n) / n
        u_f = torch.fft.rfft(u.to(dtype), n=n)
        y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :length]
        if d is not None:
            y = y + u.to(dtype) * d.to(dtype).unsqueeze(-1)
    return y.to(u.dtype)


def short_conv_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Causal depthwise convolution of x (B, L, C) with weight (C, 1, K): transpose,
    ``F.conv1d`` with padding K-1, cut to L, transpose back."""
    if x.dim() != 3 or weight.dim() != 3 or weight.shape[1] != 1 or weight.shape[0] != x.shape[-1]:
        raise HyenaDNAError(
            f"short_conv expects x (B, L, C) and weight (C, 1, K), got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    length, taps = x.shape[1], weight.shape[-1]
    y = F.conv1d(x.transpose(1, 2), weight, bias, padding=taps - 1, groups=x.shape[-1])[..., :length]
    return y.transpose(1, 2)


def hyena_operator_ref(
    x: torch.Tensor,
    in_proj: Pair,
    short_conv: Pair,
    k: torch.Tensor,
    d_skip: torch.Tensor | None,
    out_proj: Pair,
    order: int,
) -> torch.Tensor:
    """The Hyena operator (module docstring) on x (B, L, d): k (order-1, d, L) holds the long
    filters, d_skip (order-1, d) their skip terms (``None``: none)."""
    d = x.shape[-1]
    u = short_conv_ref(F.linear(x, *in_proj), *short_conv).transpose(1, 2)  # (B, (N+1) d, L)
    *gates, v = u.split(d, dim=1)
    for step in range(order - 1):
        v = fftconv_ref(v * gates[order - 1 - step], k[step], None if d_skip is None else d_skip[step])
    return F.linear((gates[0] * v).transpose(1, 2), *out_proj)
