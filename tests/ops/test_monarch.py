"""The Monarch DFT building blocks (:mod:`hyenadna.ops.triton.monarch`) against torch.fft in
float64 on fresh random inputs: the tables, the row transforms in their (k1, k2) order and back,
and the column transform of the four-step kernels. On the CPU the kernels run in Triton's
interpreter (``TRITON_INTERPRET=1``, set by conftest), as in tests/ops/test_triton.py."""

from __future__ import annotations

import math

import pytest
import torch

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from hyenadna.ops.triton.monarch import (  # noqa: E402  (after the skip: triton is optional)
    column_dft,
    dft_tables,
    dot_precision,
    load_tables,
    row_dft,
    row_dft_real,
    row_idft,
    row_idft_real,
    split_power_of_two,
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PRECISION = dot_precision(torch.float32)
ROW_TRANSFORMS = {"dft_real": 0, "dft": 1, "idft": 2, "idft_real": 3}


@triton.jit
def _row_kernel(xr_ptr, xi_ptr, tables, yr_ptr, yi_ptr, N1: tl.constexpr, N2: tl.constexpr,
                MODE: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    idx = tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
    xr = tl.load(xr_ptr + idx)
    xi = tl.load(xi_ptr + idx)
    f1r, f1i, f2r, f2i, twr, twi = load_tables(tables, N1, N2)
    if MODE == 0:
        yr, yi = row_dft_real(xr, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    elif MODE == 1:
        yr, yi = row_dft(xr, xi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    elif MODE == 2:
        yr, yi = row_idft(xr, xi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
    else:
        yr = row_idft_real(xr, xi, f1r, f1i, f2r, f2i, twr, twi, PRECISION)
        yi = yr * 0.0
    tl.store(yr_ptr + idx, yr)
    tl.store(yi_ptr + idx, yi)


@triton.jit
def _column_kernel(xr_ptr, xi_ptr, tables, yr_ptr, yi_ptr, P1: tl.constexpr, P2: tl.constexpr, BQ: tl.constexpr,
                   REAL_INPUT: tl.constexpr, CONJ: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    idx = tl.arange(0, P1 * P2)[:, None] * BQ + tl.arange(0, BQ)[None, :]
    yr, yi = column_dft(tl.load(xr_ptr + idx), tl.load(xi_ptr + idx), tables, P1, P2, BQ, REAL_INPUT, CONJ, PRECISION)
    tl.store(yr_ptr + idx, yr)
    tl.store(yi_ptr + idx, yi)


def run_row(x: torch.Tensor, mode: str) -> torch.Tensor:
    """One row transform of a complex (N1, N2) tile through :func:`_row_kernel`, complex128."""
    n1, n2 = x.shape
    xr, xi = (part.float().contiguous().to(DEVICE) for part in (x.real, x.imag))
    yr, yi = torch.full_like(xr, float("nan")), torch.full_like(xi, float("nan"))
    _row_kernel[(1,)](xr, xi, dft_tables(n1, n2, torch.device(DEVICE)), yr, yi, n1, n2, ROW_TRANSFORMS[mode],
                      PRECISION)  # fmt: skip
    return torch.complex(yr.double(), yi.double()).cpu()


def assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Within float32 rounding of the transform's size, relative to the whole result."""
    err = (got - want).abs().max() / want.abs().max()
    assert err < 1e-5, float(err)


def test_split_power_of_two():
    assert [split_power_of_two(n) for n in (1, 2, 256, 512, 4096)] == [(1, 1), (2, 1), (16, 16), (32, 16), (64, 64)]
    for bad in (0, 3, 48):
        with pytest.raises(ValueError, match="power of two"):
            split_power_of_two(bad)


@pytest.mark.parametrize("n1,n2", [(16, 16), (4, 2)])
def test_dft_tables_hold_the_dft_matrices_and_twiddles(n1, n2):
    tables = dft_tables(n1, n2, torch.device("cpu")).double()
    sizes = [n1 * n1, n1 * n1, n2 * n2, n2 * n2, n1 * n2, n1 * n2]
    f1r, f1i, f2r, f2i, twr, twi = tables.split(sizes)
    j1, j2 = torch.arange(n1, dtype=torch.float64), torch.arange(n2, dtype=torch.float64)
    for real, imag, angle in [
        (f1r, f1i, torch.outer(j1, j1) / n1),
        (f2r, f2i, torch.outer(j2, j2) / n2),
        (twr, twi, torch.outer(j1, j2) / (n1 * n2)),
    ]:
        want = torch.exp(-2j * math.pi * angle).flatten()
        assert_close(torch.complex(real, imag), want)


@pytest.mark.parametrize("n", [256, 512])
def test_row_transforms_are_the_dft_in_k1_k2_order(n):
    """A row x[N2 n1 + n2] held as an (N1, N2) tile: its spectrum X[k1 + N1 k2] comes back at
    [k1, k2], and the inverse of such a tile is n times the inverse DFT, in natural order."""
    n1, n2 = split_power_of_two(n)
    torch.manual_seed(n)
    x = torch.randn(n, dtype=torch.complex128)
    spectrum = torch.fft.fft(x)
    in_k1_k2 = spectrum.view(n2, n1).t()  # [k1, k2] = X[k1 + N1 k2]
    assert_close(run_row(x.view(n1, n2), "dft"), in_k1_k2)
    assert_close(run_row(x.real.view(n1, n2).to(torch.complex128), "dft_real"), torch.fft.fft(x.real).view(n2, n1).t())
    assert_close(run_row(in_k1_k2, "idft"), n * x.view(n1, n2))
    hermitian = torch.fft.fft(x.real)  # the spectrum of a real row: its inverse is real
    assert_close(run_row(hermitian.view(n2, n1).t(), "idft_real"), n * x.real.view(n1, n2).to(torch.complex128))


@pytest.mark.parametrize("p1,p2", [(1, 16), (16, 16)])
@pytest.mark.parametrize("real_input", [False, True])
@pytest.mark.parametrize("conj", [False, True])
def test_column_dft_transforms_every_column(p1, p2, real_input, conj):
    """The DFT (``CONJ``: the unnormalised inverse) of size P1 P2 down each column of a tile,
    natural order in and out; P1 = 1 is one dense product."""
    p, columns = p1 * p2, 16
    torch.manual_seed(p + 2 * real_input + conj)
    x = torch.randn(p, columns, dtype=torch.complex128)
    if real_input:
        x = x.real.to(torch.complex128)
    want = p * torch.fft.ifft(x, dim=0) if conj else torch.fft.fft(x, dim=0)
    xr, xi = (part.float().contiguous().to(DEVICE) for part in (x.real, x.imag))
    yr, yi = torch.full_like(xr, float("nan")), torch.full_like(xi, float("nan"))
    tables = dft_tables(p1, p2, torch.device(DEVICE))
    _column_kernel[(1,)](xr, xi, tables, yr, yi, p1, p2, columns, real_input, conj, PRECISION)
    assert_close(torch.complex(yr.double(), yi.double()).cpu(), want)
