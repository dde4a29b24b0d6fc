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

Backward, per channel group: the outer step runs on u = x1 v and g = dy x0, then one inner
program per (channel, k) loops over the batch in a fixed order (deterministic) and writes
the inverse of U H (for dx0), of G conj(H) (for du, the anti-causal correlation) and of the
batch sum of G conj(U) (dh), each then finished by the outer inverse with its own epilogue.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from hyenadna.errors import HyenaDNAError
from hyenadna.ops.triton import output_buffer
from hyenadna.ops.triton.monarch import (
    cmul,
    cmul_conj,
    column_dft,
    dft_tables,
    dot_precision,
    load_tables,
    row_dft,
    row_idft,
    split_power_of_two,
)

WORKSPACE_BYTES = 1 << 30  # float32 intermediates held at once, per call
TILE = 4096  # elements of an outer program's (P, BQ) tile, as many as an inner (64, 64) tile
MAX_INNER = 4096  # the inner row transform: at most (64, 64)
MAX_OUTER = 4096  # the outer column transform: at most (64, 64)
FUSED_MAX_SIZE = 1 << 16  # transforms up to this size run forward and backward as one persistent kernel each

# epilogues of the outer inverse
FORWARD, GRAD_X0, GRAD_U, GRAD_H = 0, 1, 2, 3


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
    and Q >= 256), Q as large as one inner program takes with P a size the column transform
    takes. Any length up to :func:`max_length` has one; the model sends only the lengths
    the one-program kernel cannot hold."""
    n = max(4096, 1 << (2 * length - 1).bit_length())
    for q_bits in range(MAX_INNER.bit_length() - 1, 7, -1):
        split = _outer_split(n >> q_bits)
        if split is not None:
            return Plan(n, *split, *split_power_of_two(1 << q_bits))
    raise HyenaDNAError(f"length {length} is beyond the Triton long convolution's {max_length():,} positions")


@functools.lru_cache(maxsize=16)
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
    with torch.autocast(h.device.type, enabled=False):
        values = torch.fft.rfft(h.to(dtype), n=plan.n)[:, index].view(channels, plan.rows, plan.q)
    rows = torch.empty(channels, 2, plan.rows, plan.q, dtype=torch.float32, device=h.device)
    rows[:, 0] = values.real
    rows[:, 1] = torch.where(mirrored, -values.imag, values.imag)
    return rows


@triton.jit
def _twiddled(xr, xi, k, q, N: tl.constexpr, CONJ: tl.constexpr):
    """(xr + i xi) * W_n^(k q) (conjugate with ``CONJ``); exact integer phase, then one rounding."""
    angle = ((k[:, None] * q[None, :]) % N).to(tl.float32) * (6.283185307179586 / N)
    wr = tl.cos(angle)
    wi = tl.sin(angle) if CONJ else -tl.sin(angle)
    return cmul(xr, xi, wr, wi)


@triton.jit
def _outer_forward_tile(
    a_row, b_row, dst, tables, block, length,
    N: tl.constexpr, P1: tl.constexpr, P2: tl.constexpr, Q: tl.constexpr, R: tl.constexpr,
    BQ: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Columns ``block`` of one row: the column DFT of a * b (``a_row``, ``b_row`` point at
    the row's first position), twiddled, rows k <= P/2 stored to the row's intermediate
    ``dst`` (2, R, Q)."""
    k = tl.arange(0, P1 * P2)
    q = block * BQ + tl.arange(0, BQ)
    pos = k[:, None] * Q + q[None, :]
    ok = pos < length
    x = tl.load(a_row + pos, mask=ok, other=0.0).to(tl.float32)
    x = x * tl.load(b_row + pos, mask=ok, other=0.0).to(tl.float32)
    xr, xi = column_dft(x, x, tables, P1, P2, BQ, True, False, PRECISION)
    xr, xi = _twiddled(xr, xi, k, q, N, False)
    out = dst + k[:, None] * Q + q[None, :]
    keep = (k[:, None] <= P1 * P2 // 2) & (q[None, :] < Q)
    tl.store(out, xr, mask=keep)
    tl.store(out + R * Q, xi, mask=keep)


@triton.jit
def _inner_tile(row_ptr, k, R: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr):
    """Pointer to spectrum row ``k`` of one intermediate (2, R, Q), as an (N1, N2) tile (real
    plane; the imaginary one is R Q further)."""
    return row_ptr + k * N1 * N2 + tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]


@triton.jit
def _inner_conv_row(src, h, k, f1r, f1i, f2r, f2i, twr, twi, R: tl.constexpr, N1: tl.constexpr,
                    N2: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    """In place: the size-Q DFT of spectrum row k of ``src``, times the filter's (``h``, the
    channel's (2, R, Q) spectrum), and back."""
    ptr = _inner_tile(src, k, R, N1, N2)
    xr, xi = row_dft(tl.load(ptr), tl.load(ptr + R * N1 * N2), f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    hptr = _inner_tile(h, k, R, N1, N2)
    yr, yi = cmul(xr, xi, tl.load(hptr), tl.load(hptr + R * N1 * N2))
    zr, zi = row_idft(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    tl.store(ptr, zr)
    tl.store(ptr + R * N1 * N2, zi)


@triton.jit
def _outer_inverse_tile(
    src, tables, block,
    N: tl.constexpr, P1: tl.constexpr, P2: tl.constexpr, Q: tl.constexpr, R: tl.constexpr,
    BQ: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Columns ``block`` of one row: the conjugate twiddle and the inverse column DFT of the
    intermediate ``src``, rows k > P/2 read as the conjugates of rows P - k. Returns the
    unnormalised real result (P, BQ) and its positions."""
    k = tl.arange(0, P1 * P2)
    q = block * BQ + tl.arange(0, BQ)
    mirrored = k > P1 * P2 // 2
    source = tl.where(mirrored, P1 * P2 - k, k)
    ptr = src + source[:, None] * Q + q[None, :]
    xr, xi = _twiddled(tl.load(ptr), tl.load(ptr + R * Q), source, q, N, True)
    xi = tl.where(mirrored[:, None], -xi, xi)
    conv, _ = column_dft(xr, xi, tables, P1, P2, BQ, False, True, PRECISION)
    return conv, k[:, None] * Q + q[None, :]


@triton.jit
def _store_gated(conv, pos, ok, gate_row, x1_row, v_row, skip, out_row):
    """out = gate * (conv + D x1 v): the forward's output (gate x0) and dx0 (gate dy)."""
    x1 = tl.load(x1_row + pos, mask=ok, other=0.0).to(tl.float32)
    v = tl.load(v_row + pos, mask=ok, other=0.0).to(tl.float32)
    gate = tl.load(gate_row + pos, mask=ok, other=0.0).to(tl.float32)
    tl.store(out_row + pos, (gate * (conv + skip * x1 * v)).to(out_row.dtype.element_ty), mask=ok)


@triton.jit
def _store_grad_u(conv, pos, ok, dy_row, x0_row, x1_row, v_row, skip, dx1_row, dv_row):
    """With g = dy x0 and du = conv + D g: dx1 = du v and dv = du x1; returns this tile's sum
    of g x1 v (its part of dD)."""
    x1 = tl.load(x1_row + pos, mask=ok, other=0.0).to(tl.float32)
    v = tl.load(v_row + pos, mask=ok, other=0.0).to(tl.float32)
    g = tl.load(dy_row + pos, mask=ok, other=0.0).to(tl.float32)
    g = g * tl.load(x0_row + pos, mask=ok, other=0.0).to(tl.float32)
    du = conv + skip * g
    tl.store(dx1_row + pos, (du * v).to(dx1_row.dtype.element_ty), mask=ok)
    tl.store(dv_row + pos, (du * x1).to(dv_row.dtype.element_ty), mask=ok)
    return tl.sum(tl.sum(g * x1 * v, 1), 0)


@triton.jit
def _grad_spectra(uptr, gptr, hr, hi, plane, f1r, f1i, f2r, f2i, twr, twi, PRECISION: tl.constexpr):
    """One spectrum row of one batch row, in place: the tiles at ``uptr`` (u's outer step) and
    ``gptr`` (g's) become the inverses of U H (for dx0) and G conj(H) (for du); returns
    G conj(U), this row's part of dh's spectrum."""
    ur, ui = row_dft(tl.load(uptr), tl.load(uptr + plane), f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    gr, gi = row_dft(tl.load(gptr), tl.load(gptr + plane), f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    yr, yi = cmul(ur, ui, hr, hi)
    zr, zi = row_idft(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    tl.store(uptr, zr)
    tl.store(uptr + plane, zi)
    yr, yi = cmul_conj(gr, gi, hr, hi)
    zr, zi = row_idft(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    tl.store(gptr, zr)
    tl.store(gptr + plane, zi)
    return cmul_conj(gr, gi, ur, ui)


@triton.jit
def _inner_bwd_row(su, sg, sh, h, k, index, f1r, f1i, f2r, f2i, twr, twi, R: tl.constexpr, N1: tl.constexpr,
                   N2: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    """Spectrum row k of one batch row: U H and G conj(H) transformed back in place (into
    ``su``, ``sg``), and G conj(U) added to the channel's running sum in ``sh`` (set by batch
    row ``index`` 0)."""
    plane = R * N1 * N2
    uptr = _inner_tile(su, k, R, N1, N2)
    gptr = _inner_tile(sg, k, R, N1, N2)
    hptr = _inner_tile(h, k, R, N1, N2)
    sptr = _inner_tile(sh, k, R, N1, N2)
    yr, yi = _grad_spectra(uptr, gptr, tl.load(hptr), tl.load(hptr + plane), plane,
                           f1r, f1i, f2r, f2i, twr, twi, PRECISION)  # fmt: skip
    if index > 0:
        yr += tl.load(sptr)
        yi += tl.load(sptr + plane)
    tl.store(sptr, yr)
    tl.store(sptr + plane, yi)


@triton.jit
def _outer_fwd(
    a_ptr, b_ptr, spec, tables,
    length, batch, c0, a_stride_b, a_stride_c, b_stride_b, b_stride_c,
    N: tl.constexpr, P1: tl.constexpr, P2: tl.constexpr, Q: tl.constexpr, R: tl.constexpr,
    BQ: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Row i B + b of the group (channel c0 + i, batch b: rows of one channel are neighbours,
    so programs running together share its filter spectrum in L2), one column block:
    :func:`_outer_forward_tile` into ``spec`` (group rows, 2, R, Q)."""
    row = tl.program_id(0).to(tl.int64)  # 64-bit offsets: B x C x L passes 2^31
    b = row % batch
    c = c0 + row // batch
    _outer_forward_tile(
        a_ptr + b * a_stride_b + c * a_stride_c, b_ptr + b * b_stride_b + c * b_stride_c,
        spec + row * 2 * R * Q, tables, tl.program_id(1), length, N, P1, P2, Q, R, BQ, PRECISION,
    )  # fmt: skip


@triton.jit
def _inner_conv(spec, hspec, batch, tables, R: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr,
                PRECISION: tl.constexpr):  # fmt: skip
    """Intermediate row i, spectrum row k: :func:`_inner_conv_row` with channel i // B's filter."""
    row = tl.program_id(0).to(tl.int64)  # 64-bit offsets: B x C x L passes 2^31
    f1r, f1i, f2r, f2i, twr, twi = load_tables(tables, N1, N2)
    _inner_conv_row(
        spec + row * 2 * R * N1 * N2, hspec + (row // batch) * 2 * R * N1 * N2, tl.program_id(1),
        f1r, f1i, f2r, f2i, twr, twi, R, N1, N2, PRECISION,
    )  # fmt: skip


@triton.jit
def _inner_bwd(su, sg, sh, hspec, batch, tables, R: tl.constexpr, N1: tl.constexpr,
               N2: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    """Channel i of the group, spectrum row k: over the batch in order, U H and G conj(H)
    transformed back in place, and the sum of G conj(U) transformed back into ``sh``."""
    channel = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1)
    plane = R * N1 * N2
    f1r, f1i, f2r, f2i, twr, twi = load_tables(tables, N1, N2)
    hptr = _inner_tile(hspec + channel * 2 * plane, k, R, N1, N2)
    hr = tl.load(hptr)
    hi = tl.load(hptr + plane)
    acc_r = tl.zeros((N1, N2), dtype=tl.float32)
    acc_i = tl.zeros((N1, N2), dtype=tl.float32)
    for b in range(batch):
        uptr = _inner_tile(su + (channel * batch + b) * 2 * plane, k, R, N1, N2)
        gptr = _inner_tile(sg + (channel * batch + b) * 2 * plane, k, R, N1, N2)
        yr, yi = _grad_spectra(uptr, gptr, hr, hi, plane, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
        acc_r += yr
        acc_i += yi
    zr, zi = row_idft(acc_r, acc_i, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    sptr = _inner_tile(sh + channel * 2 * plane, k, R, N1, N2)
    tl.store(sptr, zr)
    tl.store(sptr + plane, zi)


@triton.jit
def _outer_inv(
    spec, tables, x0_ptr, x1_ptr, v_ptr, dy_ptr, d_ptr, out_ptr, out2_ptr, dd_ptr,
    length, channels, batch, c0, stride_b, stride_c, scale,
    N: tl.constexpr, P1: tl.constexpr, P2: tl.constexpr, Q: tl.constexpr, R: tl.constexpr,
    BQ: tl.constexpr, PRECISION: tl.constexpr, MODE: tl.constexpr,
):  # fmt: skip
    """:func:`_outer_inverse_tile` of one (row, column block) and its epilogue:

    FORWARD: out = x0 (conv + D x1 v); GRAD_X0: out = dy (conv + D x1 v); GRAD_U: with
    du = conv + D dy x0, out = du v, out2 = du x1, and this tile's sum of dy x0 x1 v into
    ``dd_ptr``; GRAD_H: out = conv, float32, channel row c0 + i (no batch)."""
    row = tl.program_id(0).to(tl.int64)  # 64-bit offsets: B x C x L passes 2^31
    block = tl.program_id(1)
    conv, pos = _outer_inverse_tile(spec + row * 2 * R * Q, tables, block, N, P1, P2, Q, R, BQ, PRECISION)
    conv = conv * scale
    ok = pos < length
    if MODE == GRAD_H:
        tl.store(out_ptr + (c0 + row) * length + pos, conv, mask=ok)
    else:
        b = row % batch
        c = c0 + row // batch
        base = b * stride_b + c * stride_c
        out_at = (b * channels + c) * length
        skip = tl.load(d_ptr + c).to(tl.float32)
        if MODE == FORWARD:
            _store_gated(conv, pos, ok, x0_ptr + base, x1_ptr + base, v_ptr + base, skip, out_ptr + out_at)
        elif MODE == GRAD_X0:
            _store_gated(conv, pos, ok, dy_ptr + out_at, x1_ptr + base, v_ptr + base, skip, out_ptr + out_at)
        else:
            partial = _store_grad_u(conv, pos, ok, dy_ptr + out_at, x0_ptr + base, x1_ptr + base, v_ptr + base,
                                    skip, out_ptr + out_at, out2_ptr + out_at)  # fmt: skip
            tl.store(dd_ptr + (b * channels + c) * tl.num_programs(1) + block, partial)


@triton.jit
def _fused_fwd(
    x0_ptr, x1_ptr, v_ptr, out_ptr, hspec, d_ptr, outer_tables, inner_tables, scratch,
    rows, length, channels, batch, stride_b, stride_c, scale,
    N: tl.constexpr, P1: tl.constexpr, P2: tl.constexpr, Q: tl.constexpr, R: tl.constexpr,
    BQ: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """The whole forward in one persistent kernel, for transforms small enough that one
    intermediate per program stays in L2: each program owns a scratch slot and takes rows
    slot, slot + programs, ... through all three steps, with a barrier between steps (the
    steps exchange data across the program's threads through the slot). HBM then sees only
    the inputs and the output, as with the one-program kernel."""
    slot = tl.program_id(0).to(tl.int64)  # a 64-bit loop: B x C x L passes 2^31
    work = scratch + slot * 2 * R * Q
    f1r, f1i, f2r, f2i, twr, twi = load_tables(inner_tables, N1, N2)
    for row in range(slot, rows, tl.num_programs(0)):
        b = row % batch
        c = row // batch  # rows of one channel together: its spectrum stays in L2
        base = b * stride_b + c * stride_c
        for block in range(Q // BQ):
            _outer_forward_tile(x1_ptr + base, v_ptr + base, work, outer_tables, block, length,
                                N, P1, P2, Q, R, BQ, PRECISION)  # fmt: skip
        tl.debug_barrier()
        for k in range(R):
            _inner_conv_row(work, hspec + c * 2 * R * Q, k, f1r, f1i, f2r, f2i, twr, twi, R, N1, N2, PRECISION)
        tl.debug_barrier()
        skip = tl.load(d_ptr + c).to(tl.float32)
        for block in range(Q // BQ):
            conv, pos = _outer_inverse_tile(work, outer_tables, block, N, P1, P2, Q, R, BQ, PRECISION)
            _store_gated(conv * scale, pos, pos < length, x0_ptr + base, x1_ptr + base, v_ptr + base, skip,
                         out_ptr + (b * channels + c) * length)  # fmt: skip
        tl.debug_barrier()  # the slot is rewritten by the next row


@triton.jit
def _fused_bwd(
    x0_ptr, x1_ptr, v_ptr, dy_ptr, hspec, d_ptr, outer_tables, inner_tables, scratch,
    dx0_ptr, dx1_ptr, dv_ptr, dh_ptr, dd_ptr,
    length, channels, batch, stride_b, stride_c, scale,
    N: tl.constexpr, P1: tl.constexpr, P2: tl.constexpr, Q: tl.constexpr, R: tl.constexpr,
    BQ: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """The whole backward in one persistent kernel (sizes as :func:`_fused_fwd`): each
    program owns three scratch slots (u, g and the channel's running sum of G conj(U)) and
    takes channels slot, slot + programs, ...; for each it walks the batch in order (the dh
    sum is deterministic) through the outer, inner and outer-inverse steps, then turns the
    sum into dh. HBM sees x0, x1, v and dy read once and the gradients written once."""
    slot = tl.program_id(0).to(tl.int64)  # a 64-bit loop: B x C x L passes 2^31
    plane = 2 * R * Q
    su = scratch + slot * 3 * plane
    sg = su + plane
    sh = sg + plane
    blocks = Q // BQ
    f1r, f1i, f2r, f2i, twr, twi = load_tables(inner_tables, N1, N2)
    for c in range(slot, channels, tl.num_programs(0)):
        h = hspec + c * plane
        skip = tl.load(d_ptr + c).to(tl.float32)
        for b in range(slot * 0, batch):  # 64-bit, as the offsets
            base = b * stride_b + c * stride_c
            out_at = (b * channels + c) * length
            for block in range(blocks):
                _outer_forward_tile(x1_ptr + base, v_ptr + base, su, outer_tables, block, length,
                                    N, P1, P2, Q, R, BQ, PRECISION)  # fmt: skip
                _outer_forward_tile(dy_ptr + out_at, x0_ptr + base, sg, outer_tables, block, length,
                                    N, P1, P2, Q, R, BQ, PRECISION)  # fmt: skip
            tl.debug_barrier()
            for k in range(R):
                _inner_bwd_row(su, sg, sh, h, k, b, f1r, f1i, f2r, f2i, twr, twi, R, N1, N2, PRECISION)
            tl.debug_barrier()
            for block in range(blocks):
                conv, pos = _outer_inverse_tile(su, outer_tables, block, N, P1, P2, Q, R, BQ, PRECISION)
                ok = pos < length
                _store_gated(conv * scale, pos, ok, dy_ptr + out_at, x1_ptr + base, v_ptr + base, skip,
                             dx0_ptr + out_at)  # fmt: skip
                conv, pos = _outer_inverse_tile(sg, outer_tables, block, N, P1, P2, Q, R, BQ, PRECISION)
                partial = _store_grad_u(conv * scale, pos, ok, dy_ptr + out_at, x0_ptr + base, x1_ptr + base,
                                        v_ptr + base, skip, dx1_ptr + out_at, dv_ptr + out_at)  # fmt: skip
                tl.store(dd_ptr + (b * channels + c) * blocks + block, partial)
            tl.debug_barrier()
        for k in range(R):  # dh: the batch's summed spectrum back through both steps
            ptr = _inner_tile(sh, k, R, N1, N2)
            zr, zi = row_idft(tl.load(ptr), tl.load(ptr + R * Q), f1r, f1i, f2r, f2i, twr, twi, PRECISION)
            tl.store(ptr, zr)
            tl.store(ptr + R * Q, zi)
        tl.debug_barrier()
        for block in range(blocks):
            conv, pos = _outer_inverse_tile(sh, outer_tables, block, N, P1, P2, Q, R, BQ, PRECISION)
            tl.store(dh_ptr + c * length + pos, conv * scale, mask=pos < length)
        tl.debug_barrier()


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
            **self.shape, PRECISION=self.precision, MODE=mode,
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
