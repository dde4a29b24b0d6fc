"""Causal long convolution with a D skip term: ``y = k * u + D ⊙ u``.

``u`` is (..., C, L), ``k`` is (C, L) (one filter per channel, as long as the input) and ``D``
is (C,). The output keeps ``u``'s dtype; the FFT always runs in float32 or wider, also under
bf16/fp16 autocast, because half-precision FFTs of long signals lose the small late filter
taps that carry long-range information.

The plain reference is :func:`hyenadna.ops.reference.fftconv_ref` (HyenaDNA's arithmetic: a
real FFT of size exactly 2L). The fast paths here pick an FFT size at least 2L-1 whose prime
factors are all small (2, 3, 5, 7), preferring a slightly larger power of two where that runs
faster (:func:`conv_fft_size`), which is much faster than 2L when 2L has a large prime
factor. They share one kernel, :func:`spectral_conv`:

* :func:`fftconv`, with autograd, for rows (..., C, L) or channels-last input (..., L, C);
* :func:`fftconv_`, in place and grad-free, for channel groups of a wider buffer (the chunked
  inference path);
* the forward pass of :func:`hyenadna.ops.fused_operator.fused_operator` (fused training).
"""

from __future__ import annotations

import functools
import math

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.ops.reference import check_conv_shapes, fft_dtype, fftconv_ref
from hyenadna.ops.rows import zero_padded

UNGATED_IMPLEMENTATIONS = ("auto", "torch", "ref")  # fftconv's: no Triton kernel for the ungated form

# How much larger a power-of-two FFT may be than the smallest 7-smooth size and still be the
# faster choice, by the smooth size in points. Measured with benchmarks/fft_sizes.py (torch's
# CPU FFT, MKL; 2-core AMD EPYC, 32 MB L3): the same cost per point up to 2^19 points, but
# towards and past the last-level cache the power of two is 1.1 to 1.9 times cheaper per
# point (at 1M bases, 16 rows there and back take 127 ms at 2^21 points, 156 ms at 2,000,000).
POWER_OF_TWO_ALLOWANCE = ((2**19, 1.0), (2**20, 1.1), (2**21, 1.3), (math.inf, 1.4))


@functools.lru_cache(maxsize=4096)
def smallest_7_smooth(n: int) -> int:
    """The smallest integer >= n whose prime factors are all in {2, 3, 5, 7}."""
    if n < 1:
        raise HyenaDNAError(f"FFT size must be positive, got {n}")
    best = 1 << (n - 1).bit_length()  # a power of two is always a candidate
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                # smallest power of two times p3 that reaches n
                p2 = p3
                while p2 < n:
                    p2 *= 2
                best = min(best, p2)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best


@functools.lru_cache(maxsize=4096)
def next_fast_fft_size(n: int) -> int:
    """The FFT size used for transforms of at least ``n`` points: the smallest 7-smooth size,
    or the next power of two where that is expected to be faster (``POWER_OF_TWO_ALLOWANCE``).
    A size with a large prime factor (2L often has one) can be many times slower than either."""
    smooth = smallest_7_smooth(n)
    power = 1 << (n - 1).bit_length()
    allowance = next(factor for limit, factor in POWER_OF_TWO_ALLOWANCE if smooth <= limit)
    return power if power <= smooth * allowance else smooth


def conv_fft_size(length: int) -> int:
    """The FFT size of every fast causal convolution of ``length`` points: at least 2L-1, so
    that the circular product of the zero-padded rows does not wrap onto the first positions."""
    return next_fast_fft_size(2 * length - 1)


def filter_spectrum(k: torch.Tensor, length: int | None = None, workspace: dict | None = None) -> torch.Tensor:
    """The filter's real FFT at the size :func:`fftconv` uses for inputs of ``length`` (default:
    the filter's length), (C, F). Computing it once and passing it as ``k_f`` saves one FFT per
    call when the filter does not change (inference, a frozen backbone). ``workspace`` (see
    :func:`fftconv_`): pad in a reused buffer."""
    length = k.shape[-1] if length is None else length
    n = conv_fft_size(length)
    dtype = fft_dtype(k)
    with torch.autocast(k.device.type, enabled=False):
        if workspace is None:
            k_f = torch.fft.rfft(k.to(dtype), n=n)
        else:
            k_f = torch.fft.rfft(zero_padded(workspace, "filter", k, n, dtype))
    return k_f


def spectral_conv(
    rows: torch.Tensor,
    k_f: torch.Tensor,
    n: int,
    length: int,
    d: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``irfft(rfft(rows, n) · k_f)[..., :length] + D ⊙ rows[..., :length]``: the causal
    convolution of rows (..., C, length or more, zero after ``length``) whose filters have the
    spectrum ``k_f`` (C, n // 2 + 1). The one FFT convolution of every fast path. Without
    autograd the spectrum is multiplied in place, and ``out`` (a (..., C, length) view, strided
    or not) receives the result in the same pass as the skip term."""
    spectrum = torch.fft.rfft(rows, n=n)
    spectrum = spectrum * k_f if spectrum.requires_grad else spectrum.mul_(k_f)
    y = torch.fft.irfft(spectrum, n=n)[..., :length]
    if d is None:
        return y.clone() if out is None else out.copy_(y)
    u, d = rows[..., :length], d.unsqueeze(-1)
    return torch.addcmul(y, u, d) if out is None else torch.addcmul(y, u, d, out=out)


def _fftconv_torch(
    u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None, k_f: torch.Tensor | None, channels_last: bool
) -> torch.Tensor:
    """FFT convolution along the last axis. A channels-last input is transposed into one
    contiguous (..., C, L) buffer first: FFTs along the contiguous axis are about twice as fast
    as strided ones, which outweighs the copy; the result is written back channels-last."""
    length = u.shape[-2] if channels_last else u.shape[-1]
    n = conv_fft_size(length)
    dtype = fft_dtype(u, k)
    with torch.autocast(u.device.type, enabled=False):
        uf = u.to(dtype)
        rows = uf.transpose(-1, -2).contiguous() if channels_last else uf
        if k_f is None:
            k_f = torch.fft.rfft(k.to(dtype), n=n)
        if k_f.shape[-1] != n // 2 + 1:
            raise HyenaDNAError(f"k_f has {k_f.shape[-1]} frequencies, expected {n // 2 + 1} for length {length}")
        d = None if d is None else d.to(dtype)
        operands = (rows, k_f) if d is None else (rows, k_f, d)
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in operands)
        out = None if grad or not channels_last else torch.empty_like(uf).transpose(-1, -2)
        y = spectral_conv(rows, k_f, n, length, d, out)
        if channels_last:
            y = y.transpose(-1, -2)
    return y.to(u.dtype)


def fftconv_(
    u: torch.Tensor, k_f: torch.Tensor, d: torch.Tensor | None = None, workspace: dict | None = None
) -> torch.Tensor:
    """In place and grad-free: ``u <- k * u + D ⊙ u`` for channel rows ``u`` (..., C, L).

    ``k_f`` is the filters' spectrum (C, F) from :func:`filter_spectrum` for inputs of length L.
    ``u`` may be a few channels of a wider buffer (``value[:, group]``, rows contiguous along
    L): the chunked inference path convolves a group of channels of a full-length activation
    at a time, so that the float32 rows, their spectrum and the inverse transform exist for
    those channels only, and writes the result back into the same memory. ``workspace``, a
    dict kept by the caller, holds the zero-padded rows from call to call: a fresh buffer of
    hundreds of MB is page-faulted in anew by the kernel at every call. (The transforms
    allocate their results: torch.fft's ``out=`` computes into a temporary and copies it,
    15% slower than a fresh tensor.) Returns ``u``.
    """
    length = u.shape[-1]
    n = conv_fft_size(length)
    if k_f.shape != (u.shape[-2], n // 2 + 1) or (d is not None and d.shape != k_f.shape[:1]):
        raise HyenaDNAError(
            f"fftconv_ expects u (..., C, {length}), k_f (C, {n // 2 + 1}) and D (C,), got {tuple(u.shape)}, "
            f"{tuple(k_f.shape)} and {None if d is None else tuple(d.shape)}"
        )
    if torch.is_grad_enabled() and (u.requires_grad or k_f.requires_grad):
        raise HyenaDNAError("fftconv_ works in place and without autograd; use fftconv for training")
    workspace = {} if workspace is None else workspace
    dtype = fft_dtype(u, k_f.real)
    with torch.autocast(u.device.type, enabled=False):
        padded = zero_padded(workspace, "padded", u, n, dtype)
        # skip term and write-back in one pass, rounded once to u's dtype
        return spectral_conv(padded, k_f, n, length, None if d is None else d.to(dtype), out=u)


def fftconv(
    u: torch.Tensor,
    k: torch.Tensor,
    d: torch.Tensor | None = None,
    impl: str = "auto",
    k_f: torch.Tensor | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Causal long convolution ``k * u + D ⊙ u`` over the length axis (the fast path).

    ``impl``: ``"auto"`` or ``"torch"`` (torch.fft at a fast FFT size) or ``"ref"``
    (:func:`fftconv_ref`). The Triton kernels compute the gated convolution only
    (:func:`hyenadna.ops.operator_paths.gated_fftconv`); which path a layer takes is
    :func:`hyenadna.ops.dispatch.choose_path`'s choice, not this function's. ``k_f``: the
    filter's spectrum (C, F) from :func:`filter_spectrum`, to skip recomputing it (ignored by
    ``ref``).
    ``channels_last``: ``u`` is (..., L, C), the layout of the projections around the
    convolution, which then needs no transposes.
    """
    if impl not in UNGATED_IMPLEMENTATIONS:
        raise HyenaDNAError(
            f"unknown fftconv implementation {impl!r}; choose from {UNGATED_IMPLEMENTATIONS} (the Triton kernels "
            "take the gated convolution, hyenadna.ops.operator_paths.gated_fftconv)"
        )
    if channels_last:
        check_conv_shapes(u.transpose(-1, -2), k, d)
        if impl == "ref":
            return fftconv_ref(u.transpose(-1, -2), k, d).transpose(-1, -2)
    else:
        check_conv_shapes(u, k, d)
        if impl == "ref":
            return fftconv_ref(u, k, d)
    return _fftconv_torch(u, k, d, k_f, channels_last)
