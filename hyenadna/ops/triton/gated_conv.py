"""Fused gated causal long convolution in Triton: ``y = x0 * (h * (x1 * v) + D * x1 * v)``.

One program convolves one (batch, channel) row. The FFT is a two-level matrix (Monarch)
decomposition of size n = N1 * N2 >= 2L, run on tensor cores through ``tl.dot``:

    X[k1 + N1 k2] = sum_n2 W_N2^(n2 k2) W_n^(n2 k1) sum_n1 W_N1^(n1 k1) x[N2 n1 + n2]

that is ``D = ((F_N1 @ A) * T) @ F_N2`` for the row laid out as the (N1, N2) matrix A, with T
the twiddle factors; the spectrum comes out in the (k1, k2) order, the filter's spectrum is
given in that order, and the inverse runs the conjugate steps in reverse, so no transposition
or bit reversal is ever needed. The gates, the D term and the cast back to the input dtype
are fused around it; only the inputs are read and only the output is written.

Lengths up to ``MAX_LENGTH`` (n = 64 x 32) fit one program; longer inputs go to the
four-step kernels of :mod:`hyenadna.ops.triton.long_conv`, which reuse these tiles as their
inner step (:func:`gated_fftconv_triton` picks). Accumulation is float32 throughout; float32
inputs use three TF32 products per product ("tf32x3", float32 accuracy on tensor cores),
half-precision inputs one (:func:`hyenadna.ops.triton.monarch.dot_precision`). Every kernel
specialisation is compiled for sm_89/90 in CI, sm_80 too by ``make compile-check``
(:mod:`hyenadna.ops.triton.compile_check`).

Backward (same decomposition): with g = dy * x0 and u = x1 * v,
``dx0 = dy * (h * u + D u)``, ``du = corr(h, g) + D g`` (an anti-causal correlation, the
spectrum times conj(H)), ``dx1 = du * v``, ``dv = du * x1``, ``dh = sum_b corr(u, g)`` and
``dD = sum_b,t g u``; the per-row dh and dD are summed over the batch by torch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hyenadna.ops.triton import output_buffer
from hyenadna.ops.triton.monarch import (
    cmul,
    cmul_conj,
    dft_tables,
    dot_precision,
    load_tables,
    row_dft_real,
    row_idft_real,
    split_power_of_two,
)

MAX_LENGTH = 1024  # n = 2048 = 64 x 32, the largest transform one program holds within sm_89's shared memory


def transform_shape(length: int) -> tuple[int, int]:
    """(N1, N2), powers of two >= 16 with N1 * N2 >= 2 * length."""
    return split_power_of_two(max(256, 1 << (2 * length - 1).bit_length()))


def filter_blocks(h: torch.Tensor, n1: int, n2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The filters' (C, L) complex spectrum at n = n1 * n2 in the kernel's (k1, k2) order,
    as float32 real and imaginary parts (C, N1, N2), scaled by 1/n for the inverse."""
    n = n1 * n2
    spectrum = torch.fft.fft(h.to(torch.float64), n=n) / n  # (C, n), index k = k1 + N1 k2
    blocks = spectrum.reshape(h.shape[0], n2, n1).transpose(1, 2)
    return blocks.real.float().contiguous(), blocks.imag.float().contiguous()


@triton.jit
def _row_layout(length, channels, stride_b, stride_c, N1: tl.constexpr, N2: tl.constexpr):
    """This program's channel, (N1, N2) position block and mask, and the offsets of its row
    (one per program) in the strided inputs and in the contiguous (B, C, L) outputs and gradients."""
    row = tl.program_id(0).to(tl.int64)
    c = row % channels
    idx = tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
    return c, idx, idx < length, (row // channels) * stride_b + c * stride_c, row * length


@triton.jit
def _gated_conv_fwd(
    x0_ptr, x1_ptr, v_ptr, out_ptr, hr_ptr, hi_ptr, d_ptr, tables,
    length, channels, stride_b, stride_c,
    N1: tl.constexpr, N2: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    c, idx, mask, base, out_base = _row_layout(length, channels, stride_b, stride_c, N1, N2)
    x1 = tl.load(x1_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
    v = tl.load(v_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
    u = x1 * v
    f1r, f1i, f2r, f2i, twr, twi = load_tables(tables, N1, N2)
    ur, ui = row_dft_real(u, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    hr = tl.load(hr_ptr + c * N1 * N2 + idx)
    hi = tl.load(hi_ptr + c * N1 * N2 + idx)
    yr, yi = cmul(ur, ui, hr, hi)
    conv = row_idft_real(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    skip = tl.load(d_ptr + c).to(tl.float32)
    x0 = tl.load(x0_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
    y = x0 * (conv + skip * u)
    tl.store(out_ptr + out_base + idx, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gated_conv_bwd(
    dy_ptr, x0_ptr, x1_ptr, v_ptr, hr_ptr, hi_ptr, d_ptr, tables,
    dx0_ptr, dx1_ptr, dv_ptr, dh_ptr, dd_ptr,
    length, channels, stride_b, stride_c,
    N1: tl.constexpr, N2: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    c, idx, mask, base, out_base = _row_layout(length, channels, stride_b, stride_c, N1, N2)
    x0 = tl.load(x0_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
    x1 = tl.load(x1_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
    v = tl.load(v_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + out_base + idx, mask=mask, other=0.0).to(tl.float32)
    skip = tl.load(d_ptr + c).to(tl.float32)
    u = x1 * v
    g = dy * x0
    f1r, f1i, f2r, f2i, twr, twi = load_tables(tables, N1, N2)
    hr = tl.load(hr_ptr + c * N1 * N2 + idx)
    hi = tl.load(hi_ptr + c * N1 * N2 + idx)
    ur, ui = row_dft_real(u, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    gr, gi = row_dft_real(g, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    # dx0 = dy * (h * u + D u)
    yr, yi = cmul(ur, ui, hr, hi)
    conv = row_idft_real(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    tl.store(dx0_ptr + out_base + idx, (dy * (conv + skip * u)).to(dx0_ptr.dtype.element_ty), mask=mask)
    # du = corr(h, g) + D g
    cr, ci = cmul_conj(gr, gi, hr, hi)
    du = row_idft_real(cr, ci, f1r, f1i, f2r, f2i, twr, twi, PRECISION) + skip * g
    tl.store(dx1_ptr + out_base + idx, (du * v).to(dx1_ptr.dtype.element_ty), mask=mask)
    tl.store(dv_ptr + out_base + idx, (du * x1).to(dv_ptr.dtype.element_ty), mask=mask)
    # dh = corr(u, g): the 1/n of the inverse sits in H, so it is applied here by hand
    cr, ci = cmul_conj(gr, gi, ur, ui)
    dh = row_idft_real(cr, ci, f1r, f1i, f2r, f2i, twr, twi, PRECISION) / (N1 * N2)
    tl.store(dh_ptr + out_base + idx, dh, mask=mask)
    tl.store(dd_ptr + tl.program_id(0), tl.sum(tl.sum(g * u, axis=1), axis=0))


def _launch_shape(x: torch.Tensor) -> tuple[int, int, int, int]:
    """(batch, channels, stride_b, stride_c) of a (B, C, L) view with unit stride along L."""
    return x.shape[0], x.shape[1], x.stride(0), x.stride(1)


class GatedFFTConv(torch.autograd.Function):
    """Autograd function over the two kernels. x0, x1, v: (B, C, L) with unit stride along L
    and the same strides (views of one in-projection are fine); h (C, L); D (C,). Outputs and
    gradients are contiguous."""

    @staticmethod
    def forward(ctx, x0, x1, v, h, d):
        length = x0.shape[-1]
        n1, n2 = transform_shape(length)
        hr, hi = filter_blocks(h.detach(), n1, n2)
        tables = dft_tables(n1, n2, x0.device)
        batch, channels, stride_b, stride_c = _launch_shape(x1)
        out = output_buffer(x1.shape, x1.dtype, x1.device)
        _gated_conv_fwd[(batch * channels,)](
            x0, x1, v, out, hr, hi, d.detach().float().contiguous(), tables,
            length, channels, stride_b, stride_c,
            N1=n1, N2=n2, PRECISION=dot_precision(x1.dtype),
        )  # fmt: skip
        ctx.save_for_backward(x0, x1, v, h, d)
        ctx.blocks = (hr, hi, tables, n1, n2)
        return out

    @staticmethod
    def backward(ctx, dy):
        x0, x1, v, h, d = ctx.saved_tensors
        hr, hi, tables, n1, n2 = ctx.blocks
        length = x0.shape[-1]
        batch, channels, stride_b, stride_c = _launch_shape(x1)
        dy = dy.contiguous()
        grads = [output_buffer(t.shape, t.dtype, t.device) for t in (x0, x1, v)]
        dh_rows = output_buffer((batch * channels, length), torch.float32, x1.device)
        dd_rows = output_buffer((batch * channels,), torch.float32, x1.device)
        _gated_conv_bwd[(batch * channels,)](
            dy, x0, x1, v, hr, hi, d.detach().float().contiguous(), tables,
            *grads, dh_rows, dd_rows,
            length, channels, stride_b, stride_c,
            N1=n1, N2=n2, PRECISION=dot_precision(x1.dtype),
        )  # fmt: skip
        dh = dh_rows.view(batch, channels, length).sum(0).to(h.dtype)
        dd = dd_rows.view(batch, channels).sum(0).to(d.dtype)
        return (*grads, dh, dd)


def gated_fftconv_triton(
    x0: torch.Tensor, x1: torch.Tensor, v: torch.Tensor, h: torch.Tensor, d: torch.Tensor | None
) -> torch.Tensor:
    """``x0 * (h * (x1 * v) + D * x1 * v)`` for (B, C, L) inputs: one program per row up to
    :data:`MAX_LENGTH`, the four-step kernels (:mod:`hyenadna.ops.triton.long_conv`) beyond."""
    if d is None:
        d = torch.zeros(h.shape[0], dtype=torch.float32, device=h.device)
    if not (x0.stride() == x1.stride() == v.stride() and x1.stride(-1) == 1):
        x0, x1, v = x0.contiguous(), x1.contiguous(), v.contiguous()
    if x1.shape[-1] > MAX_LENGTH:
        from hyenadna.ops.triton.long_conv import LongGatedFFTConv

        return LongGatedFFTConv.apply(x0, x1, v, h, d)
    return GatedFFTConv.apply(x0, x1, v, h, d)
