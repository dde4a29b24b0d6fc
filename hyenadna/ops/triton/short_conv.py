"""The Hyena operator's short causal depthwise convolution fused with its split, in Triton.

The in-projection writes (B, L, C) rows, channels last; the gated long convolution reads
(B, C, L) rows, length last. Between them the operator runs a depthwise causal convolution
of K taps (3 in every released model) over all C = (order + 1) d channels and splits the
result into gates and value. Unfused that is a transposing copy, a padded Conv1d, a cut and
a split, four passes over the widest activation of the block; here one program reads a
(positions x channels) tile once, with the K-1 positions before it, and writes the tile of
the transposed output, so the split is free (each part is a contiguous block of channels).

``u[b, c, t] = bias[c] + sum_j w[c, j] z[b, t - (K-1) + j, c]`` (zeros before the start),
what ``Conv1d(C, C, K, groups=C, padding=K-1)`` computes when cut to the first L positions.

Backward: ``dz[b, s, c] = sum_j w[c, j] du[b, c, s + K-1-j]`` (the anti-causal convolution,
written channels last again), and per program partial sums of ``dw[c, j] = sum du[b, c, t]
z[b, t - (K-1) + j, c]`` and ``dbias[c] = sum du[b, c, t]``, added up by torch (in a fixed
order: deterministic). Accumulation is float32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hyenadna.ops.triton import output_buffer

BLOCK_T = 64
BLOCK_C = 32


@triton.jit
def _short_conv_fwd(z, w, bias, u, length, channels, TAPS: tl.constexpr, HAS_BIAS: tl.constexpr,
                    BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    batch = tl.program_id(2).to(tl.int64)  # 64-bit offsets: B x L x C passes 2^31 at 1M bases
    t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    c = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < channels
    acc = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.float32)
    if HAS_BIAS:
        acc += tl.load(bias + c, mask=c_ok, other=0.0).to(tl.float32)[None, :]
    z_row = z + batch * length * channels
    for j in tl.static_range(TAPS):
        source = t - (TAPS - 1) + j
        ok = (source >= 0)[:, None] & (source < length)[:, None] & c_ok[None, :]
        x = tl.load(z_row + source[:, None] * channels + c[None, :], mask=ok, other=0.0)
        tap = tl.load(w + c * TAPS + j, mask=c_ok, other=0.0).to(tl.float32)
        acc += x.to(tl.float32) * tap[None, :]
    out = u + batch * channels * length + c[None, :] * length + t[:, None]
    tl.store(out, acc.to(u.dtype.element_ty), mask=(t < length)[:, None] & c_ok[None, :])


@triton.jit
def _short_conv_bwd(du, z, w, dz, dw_parts, dbias_parts, length, channels, TAPS: tl.constexpr,
                    BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    batch = tl.program_id(2).to(tl.int64)  # 64-bit offsets: B x L x C passes 2^31 at 1M bases
    t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    c = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < channels
    t_ok = t < length
    du_row = du + batch * channels * length + c[None, :] * length
    z_row = z + batch * length * channels
    grad_z = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.float32)
    part = (batch * tl.num_programs(0) + tl.program_id(0)) * channels * (TAPS + 1)
    for j in tl.static_range(TAPS):
        # dz[s] gets w[j] du[s + K-1-j]; dw[j] gets du[t] z[t - (K-1) + j]
        ahead = t + (TAPS - 1 - j)
        ok = (ahead < length)[:, None] & c_ok[None, :]
        g = tl.load(du_row + ahead[:, None], mask=ok, other=0.0).to(tl.float32)
        tap = tl.load(w + c * TAPS + j, mask=c_ok, other=0.0).to(tl.float32)
        grad_z += g * tap[None, :]
        source = t - (TAPS - 1) + j
        ok = (source >= 0)[:, None] & t_ok[:, None] & c_ok[None, :]
        x = tl.load(z_row + source[:, None] * channels + c[None, :], mask=ok, other=0.0).to(tl.float32)
        here = tl.load(du_row + t[:, None], mask=t_ok[:, None] & c_ok[None, :], other=0.0).to(tl.float32)
        tl.store(dw_parts + part + c * (TAPS + 1) + j, tl.sum(here * x, axis=0), mask=c_ok)
    here = tl.load(du_row + t[:, None], mask=t_ok[:, None] & c_ok[None, :], other=0.0).to(tl.float32)
    tl.store(dbias_parts + part + c * (TAPS + 1) + TAPS, tl.sum(here, axis=0), mask=c_ok)
    out = dz + batch * length * channels + t[:, None] * channels + c[None, :]
    tl.store(out, grad_z.to(dz.dtype.element_ty), mask=t_ok[:, None] & c_ok[None, :])


def _grid(batch: int, length: int, channels: int) -> tuple[int, int, int]:
    return triton.cdiv(length, BLOCK_T), triton.cdiv(channels, BLOCK_C), batch


class ShortConvSplit(torch.autograd.Function):
    """z (B, L, C) contiguous, weight (C, 1, K), bias (C,) or None -> parts (B, part, L)."""

    @staticmethod
    def forward(ctx, z, weight, bias, part):
        batch, length, channels = z.shape
        taps = weight.shape[-1]
        u = output_buffer((batch, channels, length), z.dtype, z.device)
        w = weight.detach().reshape(channels, taps).contiguous()
        b = w if bias is None else bias.detach().contiguous()
        _short_conv_fwd[_grid(batch, length, channels)](
            z, w, b, u, length, channels,
            TAPS=taps, HAS_BIAS=bias is not None, BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C,
        )  # fmt: skip
        ctx.save_for_backward(z, weight, bias)
        return u.split(part, dim=1)

    @staticmethod
    def backward(ctx, *grads):
        z, weight, bias = ctx.saved_tensors
        batch, length, channels = z.shape
        taps = weight.shape[-1]
        part = channels // len(grads)
        du = torch.cat([torch.zeros(batch, part, length, dtype=z.dtype, device=z.device) if g is None else g
                        for g in grads], dim=1).contiguous()  # fmt: skip
        grid = _grid(batch, length, channels)
        dz = output_buffer(z.shape, z.dtype, z.device)
        parts = output_buffer((batch * grid[0], channels, taps + 1), torch.float32, z.device)
        _short_conv_bwd[grid](
            du, z, weight.detach().reshape(channels, taps).contiguous(), dz, parts, parts, length, channels,
            TAPS=taps, BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C,
        )  # fmt: skip
        sums = parts.sum(0)
        dweight = sums[:, :taps].reshape(weight.shape).to(weight.dtype)
        dbias = None if bias is None else sums[:, taps].to(bias.dtype)
        return dz, dweight, dbias, None


def short_conv_split_triton(
    z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, part: int
) -> tuple[torch.Tensor, ...]:
    """Causal depthwise convolution of the in-projection ``z`` (B, L, C), transposed and split
    into C / ``part`` contiguous (B, part, L) tensors: the operator's gates and value."""
    return ShortConvSplit.apply(z.contiguous(), weight, bias, part)
