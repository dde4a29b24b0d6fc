"""The Triton kernels of the four-step gated long convolution; :mod:`hyenadna.ops.triton.long_conv`
holds the plan (the factorisation n = P * Q), the launcher and the autograd function, and its
docstring explains the decomposition these kernels run.

* :func:`_outer_fwd`: the size-P column DFT with the twiddle, one program per (row, block of
  BQ columns);
* :func:`_inner_conv` / :func:`_inner_bwd`: the size-Q row DFT, the product with the filter's
  spectrum (and, backward, the three gradient spectra), the inverse, per (row, k);
* :func:`_outer_inv`: the inverse column DFT and the epilogue of ``MODE`` (:data:`FORWARD`,
  :data:`GRAD_X0`, :data:`GRAD_U`, :data:`GRAD_H`), written straight to the output;
* :func:`_fused_fwd` / :func:`_fused_bwd`: all of it as one persistent kernel per direction,
  for transforms small enough to keep each program's scratch in L2.
"""

from __future__ import annotations

import triton
import triton.language as tl

from hyenadna.ops.triton.monarch import cmul, cmul_conj, column_dft, load_tables, row_dft, row_idft

# epilogues of the outer inverse: a kernel may read a module global only when it is a tl.constexpr
# (the CPU interpreter never checks this; the compiler refuses anything else)
FORWARD = tl.constexpr(0)
GRAD_X0 = tl.constexpr(1)
GRAD_U = tl.constexpr(2)
GRAD_H = tl.constexpr(3)


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
