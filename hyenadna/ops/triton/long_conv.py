"""The fused gated long convolution beyond one program's transform: the four-step
decomposition, for lengths past :data:`hyenadna.ops.triton.gated_conv.MAX_LENGTH` up to
millions of positions.

A transform of size n = P * Q (powers of two, n >= 2L) reads the padded row as a (P, Q)
matrix, position Q p + q, and splits into

1. **outer**: the size-P DFT down every column, then the twiddle W_n^(q k) (one program per
   (row, block of BQ columns); :func:`column_dft`, itself one or two matrix rounds);
2. **inner**: the size-Q DFT along each row k, the pointwise product with the filter's
   spectrum, and the inverse size-Q DFT, fused in one program per (row, k) (the same
   (N1, N2) Monarch tile as the short kernel);
3. **outer inverse**: the conjugate twiddle, the inverse size-P DFT down the columns, and
   the epilogue (gates, D term, cast), written straight to the output.

The spectrum index is k + P kq, so each inner program owns one residue class k of the
spectrum; no transposition is needed anywhere. The signal and the filter are real, so the
spectra are Hermitian: only the rows k <= P/2 are kept and transformed (the intermediate is
half the complex size, as large as an rfft's), and the outer inverse reads row k > P/2 as
the conjugate of row P - k (after its twiddle the columns are Hermitian in k).

Up to :data:`FUSED_MAX_SIZE` points each direction is one persistent kernel
(:func:`_fused_fwd`, :func:`_fused_bwd`): each program owns scratch slots small enough to stay
in L2 and takes rows (channels, backward) through all the steps, so HBM sees only the inputs
and the outputs. Beyond it each step is its own kernel, and the intermediate lives in HBM,
float32, for a group of channels (all batch rows) at a time, so that its size is bounded by
:data:`WORKSPACE_BYTES` whatever the length; the filter's spectrum is computed per group too
(one torch FFT, unnormalised; the 1/n sits in the epilogue) and never held for the whole model.

The kernels themselves live in :mod:`hyenadna.ops.triton.long_conv_kernels`; this module holds
the plan, the launcher and the autograd function.

Backward, per channel group: the outer step runs on u = x1 v and g = dy x0, then one inner
program per (channel, k) loops over the batch in a fixed order (deterministic) and writes
the inverse of U H (for dx0), of G conj(H) (for du, the anti-causal correlation) and of the
batch sum of G conj(U) (dh), each then finished by the outer inverse with its own epilogue.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.ops.triton import output_buffer
from hyenadna.ops.triton.long_conv_kernels import (
    FORWARD,
    GRAD_H,
    GRAD_U,
    GRAD_X0,
    _fused_bwd,
    _fused_fwd,
    _inner_bwd,
    _inner_conv,
    _outer_fwd,
    _outer_inv,
)
from hyenadna.ops.triton.monarch import dft_tables, dot_precision, split_power_of_two

WORKSPACE_BYTES = 1 << 30  # float32 intermediates held at once, per call
# Tile sizes: every kernel they give must fit the shared memory of the smallest target, sm_89's
# 101,376 bytes per block (compiled for sm_89 and sm_90 in CI, sm_80 too by make compile-check).
TILE = 1024  # elements of an outer program's (P, BQ) tile
MAX_INNER = 1024  # the inner row transform: at most (32, 32); the backward's (64, 32) needs 160 kB
MAX_OUTER = 4096  # the outer column transform: at most (64, 64)
# Transforms up to this size run each direction as one persistent kernel, whose tiles stay live
# across its steps: the backward at 2^14 points needs 106 kB.
FUSED_MAX_SIZE = 1 << 13


@dataclass(frozen=True)
class Plan:
    """Factorisation n = P * Q of the transform for one length: P = P1 * P2 down the columns
    (P1 = 1: one round), Q = N1 * N2 along the rows; BQ columns per outer program."""

    n: int
    p1: int
    p2: int
    n1: int
    n2: int

    @property
    def p(self) -> int:
        return self.p1 * self.p2

    @property
    def q(self) -> int:
        return self.n1 * self.n2

    @property
    def rows(self) -> int:
        """Spectrum rows kept: k = 0 .. P/2 (Hermitian symmetry gives the rest)."""
        return self.p // 2 + 1

    @property
    def block(self) -> int:
        """BQ: columns per outer program, at least 16 for a one-round product."""
        return min(self.q, max(TILE // self.p, 16 if self.p1 == 1 else 1))


def _outer_split(p: int) -> tuple[int, int] | None:
    """(P1, P2) for the column transform: one round for 16..64, two of 16..64 each for 256..4096."""
    if 16 <= p <= 64:
        return 1, p
    if 256 <= p <= MAX_OUTER:
        return split_power_of_two(p)[::-1]
    return None


def plan_for(length: int) -> Plan:
    """The factorisation for a length: n the next power of two >= 2L (4096 at least: P >= 16
    and Q >= 256), Q as large as one inner program takes (:data:`MAX_INNER`) with P a size the
    column transform takes. Any length up to :func:`max_length` has one; the model sends only the lengths
    the one-program kernel cannot hold."""
    n = max(4096, 1 << (2 * length - 1).bit_length())
    for q_bits in range(MAX_INNER.bit_length() - 1, 7, -1):
        split = _outer_split(n >> q_bits)
        if split is not None:
            return Plan(n, *split, *split_power_of_two(1 << q_bits))
    raise HyenaDNAError(f"length {length} is beyond the Triton long convolution's {max_length():,} positions")


@functools.lru_cache(maxsize=64)  # one plan per power of two: never evicted (a CUDA graph may hold them)
def _spectrum_gather(plan: Plan, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the kernels' spectrum layout (rows k <= P/2, frequency k + P (k1 + N1 k2) at
    tile position (k1, k2)) reads an rfft of size n: the index into its n/2 + 1 values, and
    whether the frequency is past n/2 (read as the conjugate of frequency n - m)."""
    k = torch.arange(plan.rows, device=device)[:, None, None]
    k1 = torch.arange(plan.n1, device=device)[None, :, None]
    k2 = torch.arange(plan.n2, device=device)[None, None, :]
    frequency = (k + plan.p * (k1 + plan.n1 * k2)).reshape(plan.rows, plan.q)
    mirrored = frequency > plan.n // 2
    return torch.where(mirrored, plan.n - frequency, frequency).flatten(), mirrored


def filter_rows(h: torch.Tensor, plan: Plan) -> torch.Tensor:
    """The filters' (C, L) spectrum at n in the kernels' layout (C, 2, P/2 + 1, Q): real and
    imaginary planes, row k holding frequencies k + P (k1 + N1 k2) at (k1, k2). Gathered from
    one real FFT (the filters are real: frequency m past n/2 is the conjugate of n - m).
    Unnormalised; float32 (a float64 FFT for float64 filters)."""
    channels = h.shape[0]
    dtype = torch.float64 if h.dtype == torch.float64 else torch.float32
    index, mirrored = _spectrum_gather(plan, h.device)
    # (autocast keeps FFTs in float32 anyway; ``meta`` tensors, which compile_check runs on, have no autocast)
    with torch.autocast(h.device.type, enabled=False) if h.device.type != "meta" else contextlib.nullcontext():
        values = torch.fft.rfft(h.to(dtype), n=plan.n)[:, index].view(channels, plan.rows, plan.q)
    rows = torch.empty(channels, 2, plan.rows, plan.q, dtype=torch.float32, device=h.device)
    rows[:, 0] = values.real
    rows[:, 1] = torch.where(mirrored, -values.imag, values.imag)
    return rows


def persistent_programs(device: torch.device, plan: Plan, buffers: int = 1) -> int:
    """Programs of the persistent kernels, each with ``buffers`` scratch intermediates: as many
    as keep the slots within about half an H100's 50 MB L2 (one or more per multiprocessor);
    two on the CPU interpreter, so that its tests see slots reused from row to row."""
    if device.type != "cuda":
        return 2
    slot_bytes = buffers * 2 * plan.rows * plan.q * 4
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return sms * max(1, (24 << 20) // (slot_bytes * sms))


def channel_group(batch: int, channels: int, plan: Plan, buffers: int) -> int:
    """Channels per group so that ``buffers`` intermediates of batch x group rows, plus the
    group's filter spectrum, stay within :data:`WORKSPACE_BYTES`."""
    row_bytes = 2 * plan.rows * plan.q * 4
    return max(1, min(channels, WORKSPACE_BYTES // (row_bytes * (buffers * batch + 2))))


class _Launcher:
    """The plan, tables, grids and strides of one call, so the autograd function reads as
    the sequence of kernels it runs."""

    def __init__(self, x1: torch.Tensor):
        self.batch, self.channels, self.length = x1.shape
        self.plan = plan = plan_for(self.length)
        self.stride_b, self.stride_c = x1.stride(0), x1.stride(1)
        self.outer = dft_tables(plan.p1, plan.p2, x1.device)
        self.inner = dft_tables(plan.n1, plan.n2, x1.device)
        self.precision = dot_precision(x1.dtype)
        self.device = x1.device
        self.shape = dict(N=plan.n, P1=plan.p1, P2=plan.p2, Q=plan.q, R=plan.rows, BQ=plan.block)

    def groups(self, buffers: int):
        size = channel_group(self.batch, self.channels, self.plan, buffers)
        for c0 in range(0, self.channels, size):
            yield c0, min(size, self.channels - c0)

    def workspace(self, rows: int) -> torch.Tensor:
        return output_buffer((rows, 2, self.plan.rows, self.plan.q), torch.float32, self.device)

    def outer_forward(self, a, b, spec, c0, group) -> None:
        _outer_fwd[(self.batch * group, self.plan.q // self.plan.block)](
            a, b, spec, self.outer, self.length, self.batch, c0,
            a.stride(0), a.stride(1), b.stride(0), b.stride(1), **self.shape, PRECISION=self.precision,
        )  # fmt: skip

    def outer_inverse(self, spec, rows, mode, c0, x0, x1, v, d, dy=None, out=None, out2=None, dd=None):
        dummy = x1
        _outer_inv[(rows, self.plan.q // self.plan.block)](
            spec, self.outer, x0, x1, v, dummy if dy is None else dy, d, out,
            dummy if out2 is None else out2, dummy if dd is None else dd,
            self.length, self.channels, self.batch, c0, self.stride_b, self.stride_c, 1.0 / self.plan.n,
            **self.shape, PRECISION=self.precision, MODE=mode.value,
        )  # fmt: skip

    def inner_args(self):
        return dict(R=self.plan.rows, N1=self.plan.n1, N2=self.plan.n2, PRECISION=self.precision)

    def fused_forward(self, x0, x1, v, h, d, out) -> None:
        """The persistent one-kernel forward (:func:`_fused_fwd`), every channel's spectrum
        at once (C x 4n bytes, at most a few hundred MB at :data:`FUSED_MAX_SIZE`)."""
        rows = self.batch * self.channels
        slots = min(rows, persistent_programs(self.device, self.plan))
        scratch = self.workspace(slots)
        _fused_fwd[(slots,)](
            x0, x1, v, out, filter_rows(h, self.plan), d, self.outer, self.inner, scratch,
            rows, self.length, self.channels, self.batch, self.stride_b, self.stride_c, 1.0 / self.plan.n,
            **self.shape, N1=self.plan.n1, N2=self.plan.n2, PRECISION=self.precision,
        )  # fmt: skip

    def fused_backward(self, x0, x1, v, dy, h, d, grads, dh, dd) -> None:
        """The persistent one-kernel backward (:func:`_fused_bwd`), a program per channel in turn."""
        slots = min(self.channels, persistent_programs(self.device, self.plan, buffers=3))
        scratch = output_buffer((slots, 3, 2, self.plan.rows, self.plan.q), torch.float32, self.device)
        _fused_bwd[(slots,)](
            x0, x1, v, dy, filter_rows(h, self.plan), d, self.outer, self.inner, scratch, *grads, dh, dd,
            self.length, self.channels, self.batch, self.stride_b, self.stride_c, 1.0 / self.plan.n,
            **self.shape, N1=self.plan.n1, N2=self.plan.n2, PRECISION=self.precision,
        )  # fmt: skip


class LongGatedFFTConv(torch.autograd.Function):
    """``x0 * (h * (x1 * v) + D * x1 * v)`` through the four-step kernels. x0, x1, v: (B, C, L)
    with unit stride along L and the same strides; h (C, L); D (C,). Outputs and gradients
    are contiguous."""

    @staticmethod
    def forward(ctx, x0, x1, v, h, d):
        run = _Launcher(x1)
        d32 = d.detach().float().contiguous()
        out = output_buffer(x1.shape, x1.dtype, x1.device)
        if run.plan.n <= FUSED_MAX_SIZE:
            run.fused_forward(x0, x1, v, h.detach(), d32, out)
            ctx.save_for_backward(x0, x1, v, h, d)
            return out
        for c0, group in run.groups(buffers=1):
            hspec = filter_rows(h.detach()[c0 : c0 + group], run.plan)
            spec = run.workspace(run.batch * group)
            run.outer_forward(x1, v, spec, c0, group)
            _inner_conv[(run.batch * group, run.plan.rows)](spec, hspec, run.batch, run.inner, **run.inner_args())
            run.outer_inverse(spec, run.batch * group, FORWARD, c0, x0, x1, v, d32, out=out)
        ctx.save_for_backward(x0, x1, v, h, d)
        return out

    @staticmethod
    def backward(ctx, dy):
        x0, x1, v, h, d = ctx.saved_tensors
        run = _Launcher(x1)
        d32 = d.detach().float().contiguous()
        dy = dy.contiguous()
        dx0, dx1, dv = (output_buffer(x1.shape, x1.dtype, x1.device) for _ in range(3))
        dh = output_buffer((run.channels, run.length), torch.float32, x1.device)
        blocks = run.plan.q // run.plan.block
        dd = output_buffer((run.batch, run.channels, blocks), torch.float32, x1.device)
        if run.plan.n <= FUSED_MAX_SIZE:
            run.fused_backward(x0, x1, v, dy, h.detach(), d32, (dx0, dx1, dv), dh, dd)
            return dx0, dx1, dv, dh.to(h.dtype), dd.sum((0, 2)).to(d.dtype)
        for c0, group in run.groups(buffers=2):
            hspec = filter_rows(h.detach()[c0 : c0 + group], run.plan)
            su, sg, sh = run.workspace(run.batch * group), run.workspace(run.batch * group), run.workspace(group)
            run.outer_forward(x1, v, su, c0, group)
            run.outer_forward(dy, x0, sg, c0, group)
            _inner_bwd[(group, run.plan.rows)](su, sg, sh, hspec, run.batch, run.inner, **run.inner_args())
            rows = run.batch * group
            run.outer_inverse(su, rows, GRAD_X0, c0, x0, x1, v, d32, dy=dy, out=dx0)
            run.outer_inverse(sg, rows, GRAD_U, c0, x0, x1, v, d32, dy=dy, out=dx1, out2=dv, dd=dd)
            run.outer_inverse(sh, group, GRAD_H, c0, x0, x1, v, d32, out=dh)
        return dx0, dx1, dv, dh.to(h.dtype), dd.sum((0, 2)).to(d.dtype)


def max_length() -> int:
    """The longest input the four-step kernels take."""
    return MAX_OUTER * MAX_INNER // 2
