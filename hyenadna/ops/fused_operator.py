"""The whole Hyena operator for training on the CPU: one autograd function, no transposes.

For an input ``x`` (B, L, d) and recurrence order N the operator computes

1. ``z = W_in x + b_in`` and ``u = short_conv(z)``, split into gates g_0 .. g_{N-1} and a value v_0;
2. for each step o = 0 .. N-2: ``w_o = g_{N-1-o} ⊙ v_o``, ``v_{o+1} = h_o * w_o + D_o ⊙ w_o``;
3. ``out = W_out (g_0 ⊙ v_{N-1}) + b_out``, (B, L, d).

Why one function: the long convolutions want channels-first rows (FFTs along the contiguous
axis), the projections produce and take channels-last rows, and on a CPU a transposing copy of
an activation costs several times an elementwise pass. Here the projections read and write
the (B, C, L) layout directly, as matrix products with a transposed operand (a flag to BLAS,
not a copy), so nothing is ever transposed. And plain autograd through these steps stores
every intermediate, complex spectra included, and differentiates each real FFT through a
complex one of full size; this function keeps ``x``, ``z``, the step outputs v_1 .. v_{N-1}
and the filters' spectra, and writes the backward pass out by hand with real FFTs: the input
gradient of a causal convolution is the anti-causal correlation ``irfft(rfft(g) · conj(H))``
and the filter gradient ``Σ_batch irfft(rfft(g) · conj(rfft(w)))``, both cut to L lags.

Float32 and float64 only; under the CPU's bfloat16 autocast the projections' products run in
bfloat16 and the rest in float32 (:mod:`hyenadna.ops.precision`).
:class:`hyenadna.modules.operator.HyenaOperator` takes plain autograd otherwise (half
precision, CUDA autocast, the Triton kernels, ``fftconv_impl="ref"``).
"""

from __future__ import annotations

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.ops.fftconv import conv_fft_size, spectral_conv
from hyenadna.ops.recurrence import gate_recurrence
from hyenadna.ops.rows import padded_rows, rows_product, summed_products
from hyenadna.ops.short_conv import short_conv, short_conv_backward


def _recurrence(x, in_weight, in_bias, conv_weight, conv_bias, k, d_skip, dtype):
    """Steps 1 and 2 of the module docstring: ``z`` (B, (N+1) d, L), the filters' spectra,
    the step outputs v_1 .. v_{N-1} (B, d, L) and ``u``'s parts g_0 .. g_{N-1}, v_0."""
    batch, length, _ = x.shape
    d = k.shape[1]
    n = conv_fft_size(length)
    z = x.new_empty(batch, in_weight.shape[0], length)
    rows_product(in_weight, x.transpose(1, 2), z, None if in_bias is None else in_bias[:, None], dtype)
    parts = short_conv(z, conv_weight, conv_bias, channels_last=False).split(d, dim=1)
    k_f = torch.fft.rfft(k, n=n)  # (N-1, d, F)
    outputs = []

    def step(o: int, gate: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        padded = padded_rows((batch, d), length, n, x)  # the gated value, written once, zero-padded
        torch.mul(gate, current, out=padded[..., :length])
        outputs.append(spectral_conv(padded, k_f[o], n, length, None if d_skip is None else d_skip[o]))
        return outputs[-1]

    gate_recurrence(parts[-1], parts[1:-1], step)
    return z, k_f, outputs, parts


class _HyenaMixer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, in_weight, in_bias, conv_weight, conv_bias, k, d_skip, out_weight, out_bias, order, recompute,
                dtype):  # fmt: skip
        with torch.autocast(x.device.type, enabled=False):  # every cast is explicit (``dtype``)
            z, k_f, outputs, parts = _recurrence(x, in_weight, in_bias, conv_weight, conv_bias, k, d_skip, dtype)
            gated = parts[0] * outputs[-1]
            del parts
            out = x.new_empty(*x.shape[:2], out_weight.shape[0])
            rows_product(gated.transpose(1, 2), out_weight.t(), out, out_bias, dtype)
        ctx.order, ctx.recompute, ctx.dtype = order, recompute, dtype
        kept = (k,) if recompute else (k_f, z, *outputs)
        ctx.save_for_backward(x, in_weight, in_bias, conv_weight, conv_bias, d_skip, out_weight, *kept)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        with torch.autocast(grad_out.device.type, enabled=False):
            return _HyenaMixer.backward_(ctx, grad_out)

    @staticmethod
    def backward_(ctx, grad_out):
        x, in_weight, in_bias, conv_weight, conv_bias, d_skip, out_weight, *kept = ctx.saved_tensors
        needs = ctx.needs_input_grad
        order, dtype = ctx.order, ctx.dtype
        batch, length, _ = x.shape
        d = out_weight.shape[1]
        n = conv_fft_size(length)
        if ctx.recompute:  # checkpointing: the forward pass again, without the out-projection
            z, k_f, outputs, parts = _recurrence(x, in_weight, in_bias, conv_weight, conv_bias, kept[0], d_skip, dtype)
        else:
            k_f, z, *outputs = kept
            parts = short_conv(z, conv_weight, conv_bias, channels_last=False).split(d, dim=1)  # recomputed
        *gates, value = parts
        grad_out = grad_out.contiguous()

        grad_out_weight = grad_out_bias = None
        if needs[7]:
            gated = gates[0] * outputs[-1]
            grad_out_weight = summed_products(grad_out.transpose(1, 2), gated.transpose(1, 2), dtype)
            del gated
        if needs[8]:
            grad_out_bias = grad_out.sum((0, 1))
        grad_gated = x.new_empty(batch, d, length)
        rows_product(out_weight.t(), grad_out.transpose(1, 2), grad_gated, dtype=dtype)

        grad_u = torch.empty_like(z)
        grad_gates = grad_u.split(d, dim=1)
        torch.mul(grad_gated, outputs[-1], out=grad_gates[0])
        grad_padded = padded_rows((batch, d), length, n, x)  # gradient of the step's output, padded
        torch.mul(grad_gated, gates[0], out=grad_padded[..., :length])
        del grad_gated
        grad_k = torch.zeros_like(k_f.real[..., :length]) if needs[5] else None
        grad_d = torch.zeros_like(d_skip) if needs[6] and d_skip is not None else None
        for step in reversed(range(order - 1)):
            gate = gates[order - 1 - step]
            current = value if step == 0 else outputs[step - 1]
            grad_step = grad_padded[..., :length]
            grad_spectrum = torch.fft.rfft(grad_padded)
            if grad_k is not None or grad_d is not None:
                padded = padded_rows((batch, d), length, n, x)
                w = torch.mul(gate, current, out=padded[..., :length])
                if grad_d is not None:
                    grad_d[step] = torch.linalg.vecdot(grad_step, w, dim=-1).sum(0)
                if grad_k is not None:
                    cross = (grad_spectrum * torch.fft.rfft(padded).conj()).sum(0)
                    grad_k[step] = torch.fft.irfft(cross, n=n)[..., :length]
                del padded, w
            grad_w = torch.fft.irfft(grad_spectrum.mul_(k_f[step].conj()), n=n)[..., :length]
            del grad_spectrum
            if d_skip is not None:
                grad_w.addcmul_(grad_step, d_skip[step, :, None])
            torch.mul(grad_w, current, out=grad_gates[order - 1 - step])
            if step == 0:
                torch.mul(grad_w, gate, out=grad_gates[-1])
            else:
                grad_padded = padded_rows((batch, d), length, n, x)
                torch.mul(grad_w, gate, out=grad_padded[..., :length])
            del grad_w

        grad_z, grad_conv_weight, grad_conv_bias = short_conv_backward(
            grad_u, z, conv_weight, (needs[0] or needs[1] or needs[2], needs[3], needs[4] and conv_bias is not None)
        )
        del grad_u
        grad_x = grad_in_weight = grad_in_bias = None
        if needs[0]:
            grad_x = torch.empty_like(x)
            rows_product(grad_z.transpose(1, 2), in_weight, grad_x, dtype=dtype)
        if needs[1]:
            grad_in_weight = summed_products(grad_z, x, dtype)
        if needs[2]:
            grad_in_bias = grad_z.sum((0, 2))
        return (grad_x, grad_in_weight, grad_in_bias, grad_conv_weight, grad_conv_bias, grad_k, grad_d,
                grad_out_weight, grad_out_bias, None, None, None)  # fmt: skip


def fused_operator(
    x: torch.Tensor,
    in_proj: tuple[torch.Tensor, torch.Tensor | None],
    short_conv: tuple[torch.Tensor, torch.Tensor | None],
    k: torch.Tensor,
    d_skip: torch.Tensor | None,
    out_proj: tuple[torch.Tensor, torch.Tensor | None],
    order: int,
    recompute: bool = False,
    matmul_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The Hyena operator (see the module docstring) on ``x`` (B, L, d), differentiable.

    ``in_proj``, ``short_conv`` and ``out_proj`` are (weight, bias) pairs in ``nn.Linear`` /
    depthwise ``nn.Conv1d`` layout: ((order+1) d, d), ((order+1) d, 1, K) and (d, d), biases
    or ``None``. ``k`` (order-1, d, L) holds the long filters and ``d_skip`` (order-1, d) their
    skip terms (``None``: none). All in ``x``'s dtype, float32 or float64. ``recompute``:
    activation checkpointing, keep only the input and run the forward pass again in the
    backward (without the out-projection, which the backward does not need). ``matmul_dtype``:
    the projections' products in that dtype (bfloat16 under CPU autocast,
    :mod:`hyenadna.ops.precision`), everything else in ``x``'s."""
    if x.dim() != 3 or x.dtype not in (torch.float32, torch.float64):
        raise HyenaDNAError(f"fused_operator expects a float32/float64 x (B, L, d), got {tuple(x.shape)} {x.dtype}")
    d, length = x.shape[-1], x.shape[1]
    tensors = (*in_proj, *short_conv, k, d_skip, *out_proj)
    if any(t is not None and t.dtype != x.dtype for t in tensors):
        raise HyenaDNAError(f"fused_operator expects every weight in x's dtype {x.dtype}")
    if (
        in_proj[0].shape != ((order + 1) * d, d)
        or short_conv[0].shape[:2] != ((order + 1) * d, 1)
        or k.shape != (order - 1, d, length)
        or (d_skip is not None and d_skip.shape != (order - 1, d))
        or out_proj[0].shape != (d, d)
    ):
        raise HyenaDNAError(
            f"fused_operator: shapes do not fit x {tuple(x.shape)} and order {order}: in_proj "
            f"{tuple(in_proj[0].shape)}, short_conv {tuple(short_conv[0].shape)}, k {tuple(k.shape)}, "
            f"D {None if d_skip is None else tuple(d_skip.shape)}, out_proj {tuple(out_proj[0].shape)}"
        )
    tensors = (x.contiguous(), *in_proj, *short_conv, k, d_skip, *out_proj)
    return _HyenaMixer.apply(*tensors, order, recompute, matmul_dtype)
