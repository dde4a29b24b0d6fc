"""Matrix (Monarch) DFT building blocks shared by the Triton long-convolution kernels.

A DFT of size n = N1 * N2 is two rounds of small dense DFTs with a twiddle between them,

    X[k1 + N1 k2] = sum_n2 W_N2^(n2 k2) W_n^(n2 k1) sum_n1 W_N1^(n1 k1) x[N2 n1 + n2],

and each round is a matrix product, so it runs on tensor cores through ``tl.dot``. Two
shapes of the same identity are used:

* a **row** transform (:func:`row_dft` and friends) holds one length-n row as an (N1, N2)
  tile, ``D = ((F_N1 @ A) * T) @ F_N2``, and leaves the spectrum in (k1, k2) order, which the
  inverse undoes, so a convolution never needs a transposition or a bit reversal;
* a **column** transform (:func:`column_dft`) takes the DFT down the rows of a (P, BQ) tile,
  every column at once, and returns it in natural order: the outer step of the four-step
  decomposition that splits transforms too long for one program.

Tables are float32 and small (at most 64 x 64 per factor), computed in float64.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl


def split_power_of_two(n: int) -> tuple[int, int]:
    """(N1, N2) with N1 * N2 = n, both powers of two, N1 >= N2 and as close as possible."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"transform size must be a power of two, got {n}")
    n1 = 1 << ((n.bit_length() - 1 + 1) // 2)
    return n1, n // n1


def _unit(angle: torch.Tensor) -> list[torch.Tensor]:
    return [torch.cos(angle).float().flatten(), torch.sin(angle).float().flatten()]


@functools.lru_cache(maxsize=64)
def dft_tables(n1: int, n2: int, device: torch.device) -> torch.Tensor:
    """One flat float32 tensor: real and imaginary parts of F_N1 (N1 x N1), F_N2 (N2 x N2) and
    the twiddles T[k1, n2] = W_n^(n2 k1) (N1 x N2), the layout :func:`load_tables` reads."""
    j1 = torch.arange(n1, dtype=torch.float64)
    j2 = torch.arange(n2, dtype=torch.float64)
    parts = [
        *_unit(-2 * math.pi * torch.outer(j1, j1).remainder(n1) / n1),
        *_unit(-2 * math.pi * torch.outer(j2, j2).remainder(n2) / n2),
        *_unit(-2 * math.pi * torch.outer(j1, j2).remainder(n1 * n2) / (n1 * n2)),
    ]
    return torch.cat(parts).contiguous().to(device)


def dot_precision(dtype: torch.dtype) -> str:
    """Products as accurate as the operands: for float32 inputs three TF32 products per product
    ("tf32x3", the split of each operand into a TF32 head and tail: float32 accuracy on tensor
    cores; "ieee" compiles to scalar FMA code that takes ptxas minutes per kernel and spills at
    64 x 64 tiles), for half-precision inputs one TF32 product (their own rounding is coarser)."""
    return "tf32x3" if dtype in (torch.float32, torch.float64) else "tf32"


@triton.jit
def cmul(ar, ai, br, bi):
    return ar * br - ai * bi, ar * bi + ai * br


@triton.jit
def cmul_conj(ar, ai, br, bi):
    """a * conj(b)."""
    return ar * br + ai * bi, ai * br - ar * bi


@triton.jit
def load_tables(tables, N1: tl.constexpr, N2: tl.constexpr, CONJ: tl.constexpr = False):
    """The six tables of :func:`dft_tables`; conjugated (inverse transform) with ``CONJ``."""
    r1 = tl.arange(0, N1)
    r2 = tl.arange(0, N2)
    sq1 = r1[:, None] * N1 + r1[None, :]
    sq2 = r2[:, None] * N2 + r2[None, :]
    rect = r1[:, None] * N2 + r2[None, :]
    f1r = tl.load(tables + sq1)
    f1i = tl.load(tables + N1 * N1 + sq1)
    f2r = tl.load(tables + 2 * N1 * N1 + sq2)
    f2i = tl.load(tables + 2 * N1 * N1 + N2 * N2 + sq2)
    twr = tl.load(tables + 2 * N1 * N1 + 2 * N2 * N2 + rect)
    twi = tl.load(tables + 2 * N1 * N1 + 2 * N2 * N2 + N1 * N2 + rect)
    if CONJ:
        f1i, f2i, twi = -f1i, -f2i, -twi
    return f1r, f1i, f2r, f2i, twr, twi


@triton.jit
def cdot(ar, ai, br, bi, PRECISION: tl.constexpr):
    """Complex matrix product (ar + i ai) @ (br + i bi)."""
    real = tl.dot(ar, br, input_precision=PRECISION) - tl.dot(ai, bi, input_precision=PRECISION)
    imag = tl.dot(ar, bi, input_precision=PRECISION) + tl.dot(ai, br, input_precision=PRECISION)
    return real, imag


@triton.jit
def row_dft_real(x, f1r, f1i, f2r, f2i, twr, twi, PRECISION: tl.constexpr):
    """Spectrum, in (k1, k2) order, of a real row held as an (N1, N2) tile."""
    br = tl.dot(f1r, x, input_precision=PRECISION)
    bi = tl.dot(f1i, x, input_precision=PRECISION)
    cr, ci = cmul(br, bi, twr, twi)
    return cdot(cr, ci, f2r, f2i, PRECISION)


@triton.jit
def row_dft(xr, xi, f1r, f1i, f2r, f2i, twr, twi, PRECISION: tl.constexpr):
    """Spectrum, in (k1, k2) order, of a complex row held as an (N1, N2) tile."""
    br, bi = cdot(f1r, f1i, xr, xi, PRECISION)
    cr, ci = cmul(br, bi, twr, twi)
    return cdot(cr, ci, f2r, f2i, PRECISION)


@triton.jit
def row_idft(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION: tl.constexpr):
    """Unnormalised inverse of a (k1, k2)-ordered spectrum, as an (N1, N2) complex tile in
    natural order. Takes the forward tables and conjugates them itself."""
    er, ei = cdot(yr, yi, f2r, -f2i, PRECISION)
    gr, gi = cmul_conj(er, ei, twr, twi)
    return cdot(f1r, -f1i, gr, gi, PRECISION)


@triton.jit
def row_idft_real(yr, yi, f1r, f1i, f2r, f2i, twr, twi, PRECISION: tl.constexpr):
    """Real part of :func:`row_idft` (the inverse of a Hermitian spectrum), with two products
    fewer."""
    er, ei = cdot(yr, yi, f2r, -f2i, PRECISION)
    gr, gi = cmul_conj(er, ei, twr, twi)
    return tl.dot(f1r, gr, input_precision=PRECISION) + tl.dot(f1i, gi, input_precision=PRECISION)


@triton.jit
def column_dft(
    xr, xi, tables,
    P1: tl.constexpr, P2: tl.constexpr, BQ: tl.constexpr,
    REAL_INPUT: tl.constexpr, CONJ: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """DFT of size P = P1 * P2 down the rows of a (P, BQ) tile, every column at once, in
    natural order in and out (``CONJ``: the unnormalised inverse). ``tables`` is
    :func:`dft_tables` (P1, P2); P1 = 1 is one dense (P x P) product, else two rounds:

    the rows p = P2 p1 + p2 regroup as (P1, P2 BQ) for the size-P1 DFT over p1, the twiddle
    W_P^(p2 k1) follows, the tile regroups as (P1 BQ, P2) for the size-P2 DFT over p2, and
    the result (k1, q, k2) regroups to rows k = k1 + P1 k2."""
    if P1 == 1:
        fr = tl.load(tables + 2 + tl.arange(0, P2)[:, None] * P2 + tl.arange(0, P2)[None, :])
        fi = tl.load(tables + 2 + P2 * P2 + tl.arange(0, P2)[:, None] * P2 + tl.arange(0, P2)[None, :])
        if CONJ:
            fi = -fi
        if REAL_INPUT:
            yr = tl.dot(fr, xr, input_precision=PRECISION)
            yi = tl.dot(fi, xr, input_precision=PRECISION)
        else:
            yr, yi = cdot(fr, fi, xr, xi, PRECISION)
    else:
        f1r, f1i, f2r, f2i, twr, twi = load_tables(tables, P1, P2, CONJ)
        ar = tl.reshape(xr, (P1, P2 * BQ))
        if REAL_INPUT:
            br = tl.dot(f1r, ar, input_precision=PRECISION)
            bi = tl.dot(f1i, ar, input_precision=PRECISION)
        else:
            br, bi = cdot(f1r, f1i, ar, tl.reshape(xi, (P1, P2 * BQ)), PRECISION)
        br, bi = cmul(tl.reshape(br, (P1, P2, BQ)), tl.reshape(bi, (P1, P2, BQ)), twr[:, :, None], twi[:, :, None])
        br = tl.reshape(tl.permute(br, (0, 2, 1)), (P1 * BQ, P2))
        bi = tl.reshape(tl.permute(bi, (0, 2, 1)), (P1 * BQ, P2))
        cr, ci = cdot(br, bi, f2r, f2i, PRECISION)
        yr = tl.reshape(tl.permute(tl.reshape(cr, (P1, BQ, P2)), (2, 0, 1)), (P1 * P2, BQ))
        yi = tl.reshape(tl.permute(tl.reshape(ci, (P1, BQ, P2)), (2, 0, 1)), (P1 * P2, BQ))
    return yr, yi
