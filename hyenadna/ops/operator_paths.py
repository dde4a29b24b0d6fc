"""Fast forms of the Hyena operator beside :func:`hyenadna.ops.fused_operator.fused_operator` (fused
training) and the chunked inference pieces: all compute
:func:`hyenadna.ops.reference.hyena_operator_ref`, and :func:`hyenadna.ops.dispatch.choose_path`
says which runs. Every function takes the weights as the reference does, gathered in an
:class:`~hyenadna.ops.reference.OperatorWeights`: ``in_proj``, ``short_conv`` and ``out_proj``
(weight, bias) pairs, filters ``k`` (order-1, d, L), skip terms ``d_skip`` (order-1, d) or
``None``, and the recurrence order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from hyenadna.ops.fftconv import fftconv
from hyenadna.ops.fused_operator import fused_operator
from hyenadna.ops.mlp import gelu_mlp
from hyenadna.ops.precision import matmul_dtype
from hyenadna.ops.recurrence import gate_recurrence
from hyenadna.ops.reference import OperatorWeights, check_conv_shapes, hyena_operator_ref
from hyenadna.ops.short_conv import short_conv as short_conv_fn


class FilterSource(Protocol):
    """What a path needs of a layer's long filters (:class:`hyenadna.modules.filter_bank.FilterBank`)."""

    def long_filters(self, length: int) -> torch.Tensor: ...

    def filters_for(self, length: int) -> tuple[torch.Tensor | None, torch.Tensor | None]: ...


class OperatorLayer(Protocol):
    """What a path needs of a Hyena operator (:class:`hyenadna.modules.operator.HyenaOperator`):
    its filters and its weights gathered around given filters ``k`` (order-1, d, L)."""

    filter: FilterSource

    def weights(self, k: torch.Tensor) -> OperatorWeights: ...


class MlpLayer(Protocol):
    """What an MLP path needs: the two ``nn.Linear`` layers around the GELU."""

    fc1: torch.nn.Linear
    fc2: torch.nn.Linear


def _checkpointed(run: Callable) -> Callable:
    """``run(x, layer)`` as a path ``(x, layer, recompute)``: with ``recompute`` (and gradients),
    generic activation checkpointing keeps the input only."""

    def path(x: torch.Tensor, layer, recompute: bool = False) -> torch.Tensor:
        if recompute and torch.is_grad_enabled():
            return checkpoint(run, x, layer, use_reentrant=False)
        return run(x, layer)

    path.__doc__ = run.__doc__
    return path


@_checkpointed
def run_reference(x: torch.Tensor, layer: OperatorLayer) -> torch.Tensor:
    """:func:`hyena_operator_ref` with freshly computed filters."""
    return hyena_operator_ref(x, *layer.weights(layer.filter.long_filters(x.shape[-2])))


@_checkpointed
def run_channels_last(x: torch.Tensor, layer: OperatorLayer) -> torch.Tensor:
    """:func:`operator_channels_last` with the layer's cached filter spectra."""
    k, k_f = layer.filter.filters_for(x.shape[-2])
    return operator_channels_last(x, layer.weights(k), k_f)


@_checkpointed
def run_autograd(x: torch.Tensor, layer: OperatorLayer) -> torch.Tensor:
    """:func:`operator_channels_first` through torch.fft."""
    return operator_channels_first(x, layer.weights(layer.filter.filters_for(x.shape[-2])[0]))


@_checkpointed
def run_triton(x: torch.Tensor, layer: OperatorLayer) -> torch.Tensor:
    """:func:`operator_channels_first` through the Triton kernels."""
    return operator_channels_first(x, layer.weights(layer.filter.filters_for(x.shape[-2])[0]), triton=True)


def run_fused(x: torch.Tensor, layer: OperatorLayer, recompute: bool = False) -> torch.Tensor:
    """Training in float32/float64: :func:`fused_operator`, with a hand-written backward (and its
    own checkpointing, which skips the out-projection on the second pass); under CPU autocast
    its products in the autocast dtype (:mod:`hyenadna.ops.precision`)."""
    length = x.shape[-2]
    recompute = recompute and torch.is_grad_enabled()
    if recompute:  # the filter MLP's activations are as large as the operator's own
        k = checkpoint(layer.filter.long_filters, length, use_reentrant=False)
    else:
        k = layer.filter.filters_for(length)[0]
    in_proj, conv, k, skip, out_proj, order = layer.weights(k.to(x.dtype))
    skip = None if skip is None else skip.to(x.dtype)
    return fused_operator(x, in_proj, conv, k, skip, out_proj, order, recompute, matmul_dtype(x, in_proj[0]))


def mlp_fused(x: torch.Tensor, layer: MlpLayer, recompute: bool = False) -> torch.Tensor:
    """:func:`gelu_mlp`: saves the pre-activation only; ``recompute`` keeps just the input."""
    fc1, fc2 = (layer.fc1.weight, layer.fc1.bias), (layer.fc2.weight, layer.fc2.bias)
    return gelu_mlp(x, fc1, fc2, recompute, matmul_dtype(x, fc1[0]))


@_checkpointed
def mlp_autograd(x: torch.Tensor, layer: MlpLayer) -> torch.Tensor:
    """``fc2(gelu_tanh(fc1(x)))`` through plain autograd (any dtype, autocast)."""
    return layer.fc2(F.gelu(layer.fc1(x), approximate="tanh"))


def _skip(d_skip: torch.Tensor | None, step: int) -> torch.Tensor | None:
    return None if d_skip is None else d_skip[step]


def operator_channels_last(x: torch.Tensor, weights: OperatorWeights, k_f: torch.Tensor | None = None) -> torch.Tensor:
    """Grad-free inference in the projections' layout (B, L, C): no transposes around the short
    convolution (shifted multiply-adds) and one contiguous copy per long convolution. ``k_f``:
    the filters' spectra (order-1, d, F) when cached."""
    in_proj, short_conv, k, d_skip, out_proj, _ = weights
    u = short_conv_fn(F.linear(x, *in_proj), *short_conv)  # (B, L, (order+1) d)
    g0, *gates, v = u.split(x.shape[-1], dim=-1)

    def step(o: int, gate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        spectrum = None if k_f is None else k_f[o]
        return fftconv(value * gate, k[o], _skip(d_skip, o), k_f=spectrum, channels_last=True)

    return F.linear(gate_recurrence(v, gates, step) * g0, *out_proj)


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

        g0, g1, *gates, v = short_conv_split_triton(z, *short_conv, d)
    else:
        g0, g1, *gates, v = short_conv_fn(z, *short_conv).transpose(1, 2).split(d, dim=1)
    v = gate_recurrence(v, gates, lambda o, gate, value: fftconv(value * gate, k[o], _skip(d_skip, o)))
    last = order - 2  # the step with g_1, and the output gate g_0: one fused convolution
    v = gated_fftconv(g0, g1, v, k[last], _skip(d_skip, last), triton)
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
