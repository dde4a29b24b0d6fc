"""Causal long convolution with a D skip term: ``y = k * u + D ⊙ u``.

``u`` is (..., C, L), ``k`` is (C, L) (one filter per channel, as long as the input) and ``D``
is (C,). The output keeps ``u``'s dtype; the FFT always runs in float32 or wider, also under
bf16/fp16 autocast, because half-precision FFTs of long signals lose the small late filter
taps that carry long-range information.

Two implementations share this contract:

* :func:`fftconv_ref` is the plain reference, the same arithmetic as HyenaDNA's training code
  (real FFT of size exactly 2L, output cut to L). It is the yardstick for every fast path.
* :func:`fftconv` is what the model calls. It picks an FFT size at least 2L-1 whose prime
  factors are all small (2, 3, 5, 7), preferring a slightly larger power of two where that
  runs faster (:func:`next_fast_fft_size`), which is much faster than 2L when 2L has a large
  prime factor, and it dispatches on ``impl``.
"""

from __future__ import annotations

import functools
import math

import torch

from hyenadna.errors import HyenaDNAError

IMPLEMENTATIONS = ("auto", "torch", "ref", "triton")
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _check_shapes(u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None) -> None:
    if u.dim() < 2 or k.dim() != 2 or u.shape[-2:] != k.shape:
        raise HyenaDNAError(
            f"fftconv expects u (..., C, L) and k (C, L) of the same C and L, got u "
            f"{tuple(u.shape)} and k {tuple(k.shape)}"
        )
    if d is not None and d.shape != k.shape[:1]:
        raise HyenaDNAError(f"fftconv expects D of shape ({k.shape[0]},), got {tuple(d.shape)}")


def _fft_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any operand is float64, else float32 (never a half type)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def fftconv_ref(u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
    """Reference causal convolution through a real FFT of size 2L (HyenaDNA's arithmetic)."""
    _check_shapes(u, k, d)
    length = u.shape[-1]
    n = 2 * length
    dtype = _fft_dtype(u, k)
    with torch.autocast(u.device.type, enabled=False):
        k_f = torch.fft.rfft(k.to(dtype), n=n) / n
        u_f = torch.fft.rfft(u.to(dtype), n=n)
        y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :length]
        if d is not None:
            y = y + u.to(dtype) * d.to(dtype).unsqueeze(-1)
    return y.to(u.dtype)


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


def filter_spectrum(k: torch.Tensor, length: int | None = None, workspace: dict | None = None) -> torch.Tensor:
    """The filter's real FFT at the size :func:`fftconv` uses for inputs of ``length`` (default:
    the filter's length), (C, F). Computing it once and passing it as ``k_f`` saves one FFT per
    call when the filter does not change (inference, a frozen backbone). ``workspace`` (see
    :func:`fftconv_`): pad in a reused buffer."""
    length = k.shape[-1] if length is None else length
    n = next_fast_fft_size(2 * length - 1)
    dtype = _fft_dtype(k)
    with torch.autocast(k.device.type, enabled=False):
        if workspace is None:
            k_f = torch.fft.rfft(k.to(dtype), n=n)
        else:
            k_f = torch.fft.rfft(_zero_padded(workspace, "filter", k, n, dtype))
    return k_f


def _fftconv_torch(
    u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None, k_f: torch.Tensor | None, channels_last: bool
) -> torch.Tensor:
    """FFT convolution along the last axis. A channels-last input is transposed into one
    contiguous (..., C, L) buffer first: FFTs along the contiguous axis are about twice as fast
    as strided ones, which outweighs the copy; the result is written back channels-last."""
    length = u.shape[-2] if channels_last else u.shape[-1]
    n = next_fast_fft_size(2 * length - 1)
    dtype = _fft_dtype(u, k)
    with torch.autocast(u.device.type, enabled=False):
        uf = u.to(dtype)
        rows = uf.transpose(-1, -2).contiguous() if channels_last else uf
        if k_f is None:
            k_f = torch.fft.rfft(k.to(dtype), n=n)
        if k_f.shape[-1] != n // 2 + 1:
            raise HyenaDNAError(f"k_f has {k_f.shape[-1]} frequencies, expected {n // 2 + 1} for length {length}")
        spectrum = torch.fft.rfft(rows, n=n)
        spectrum = spectrum * k_f if spectrum.requires_grad else spectrum.mul_(k_f)
        y = torch.fft.irfft(spectrum, n=n)[..., :length]
        if channels_last:
            y = y.transpose(-1, -2)
        if d is None:
            out = y.contiguous() if channels_last else y
        elif torch.is_grad_enabled() and (uf.requires_grad or d.requires_grad or y.requires_grad):
            out = torch.addcmul(y, uf, d.to(dtype) if channels_last else d.to(dtype).unsqueeze(-1))
        else:
            out = torch.empty_like(uf)
            torch.addcmul(y, uf, d.to(dtype) if channels_last else d.to(dtype).unsqueeze(-1), out=out)
    return out.to(u.dtype)


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
    n = next_fast_fft_size(2 * length - 1)
    if k_f.shape != (u.shape[-2], n // 2 + 1) or (d is not None and d.shape != k_f.shape[:1]):
        raise HyenaDNAError(
            f"fftconv_ expects u (..., C, {length}), k_f (C, {n // 2 + 1}) and D (C,), got {tuple(u.shape)}, "
            f"{tuple(k_f.shape)} and {None if d is None else tuple(d.shape)}"
        )
    if torch.is_grad_enabled() and (u.requires_grad or k_f.requires_grad):
        raise HyenaDNAError("fftconv_ works in place and without autograd; use fftconv for training")
    workspace = {} if workspace is None else workspace
    dtype = _fft_dtype(u, k_f.real)
    with torch.autocast(u.device.type, enabled=False):
        padded = _zero_padded(workspace, "padded", u, n, dtype)
        y = torch.fft.irfft(torch.fft.rfft(padded).mul_(k_f), n=n)[..., :length]
        if d is None:
            return u.copy_(y)
        # skip term and write-back in one pass, rounded once to u's dtype
        return torch.addcmul(y, padded[..., :length], d.to(dtype).unsqueeze(-1), out=u)


def workspace_buffer(
    workspace: dict, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The workspace's buffer ``name`` viewed as ``shape``, made anew only when too small or
    of another dtype or device: large buffers kept by the caller are not page-faulted in again."""
    size = math.prod(shape)
    held = workspace.get(name)
    if held is None or held.numel() < size or held.dtype != dtype or held.device != device:
        held = workspace[name] = torch.empty(size, dtype=dtype, device=device)
    return held[:size].view(shape)


def _zero_padded(workspace: dict, name: str, rows: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``rows`` (..., L) copied into the workspace's buffer ``name`` (..., n), zeros after L: one
    copy, where torch.fft's own padding would zero-fill and copy the whole input once more."""
    padded = workspace_buffer(workspace, name, (*rows.shape[:-1], n), dtype, rows.device)
    length = rows.shape[-1]
    padded[..., length:].zero_()
    padded[..., :length].copy_(rows)
    return padded


def fftconv(
    u: torch.Tensor,
    k: torch.Tensor,
    d: torch.Tensor | None = None,
    impl: str = "auto",
    k_f: torch.Tensor | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Causal long convolution ``k * u + D ⊙ u`` over the length axis (the fast path).

    ``impl``: ``"auto"`` (the best available for the device), ``"torch"`` (torch.fft at a
    fast FFT size) or ``"ref"`` (:func:`fftconv_ref`); ``"triton"`` matters only to
    :func:`gated_fftconv` and means ``"torch"`` here. ``k_f``: the filter's spectrum (C, F)
    from :func:`filter_spectrum`, to skip recomputing it (ignored by ``ref``).
    ``channels_last``: ``u`` is (..., L, C), the layout of the projections around the
    convolution, which then needs no transposes.
    """
    if impl not in IMPLEMENTATIONS:
        raise HyenaDNAError(f"unknown fftconv implementation {impl!r}; choose from {IMPLEMENTATIONS}")
    impl = "torch" if impl == "triton" else impl  # the ungated convolution has no Triton kernel
    if channels_last:
        _check_shapes(u.transpose(-1, -2), k, d)
        if impl == "ref":
            return fftconv_ref(u.transpose(-1, -2), k, d).transpose(-1, -2)
    else:
        _check_shapes(u, k, d)
        if impl == "ref":
            return fftconv_ref(u, k, d)
    return _fftconv_torch(u, k, d, k_f, channels_last)


def triton_supported(x: torch.Tensor, impl: str) -> bool:
    """Whether :func:`gated_fftconv` takes the Triton kernels for inputs like ``x`` (B, C, L):
    ``impl="triton"``, or ``"auto"`` on CUDA with triton installed for float32 and half
    inputs (float64 keeps torch's float64 FFTs; the kernels accumulate in float32), for
    lengths up to the kernels' limit (8M positions; one program per row up to 2,048, the four-step kernels
    beyond)."""
    from hyenadna.ops.triton import interpreting, triton_available

    if impl not in ("auto", "triton") or x.dim() != 3:
        return False
    if impl == "auto" and not (x.is_cuda and triton_available() and x.dtype in TRITON_DTYPES):
        return False
    if x.dtype not in TRITON_DTYPES:
        raise HyenaDNAError(f"fftconv_impl 'triton' takes float32, bfloat16 or float16 inputs, got {x.dtype}")
    if impl == "triton" and not triton_available():
        raise HyenaDNAError("fftconv_impl 'triton' needs the triton package (pip install triton)")
    if impl == "triton" and not x.is_cuda and not interpreting():
        raise HyenaDNAError("fftconv_impl 'triton' runs on CUDA, or on the CPU with TRITON_INTERPRET=1")
    from hyenadna.ops.triton.long_conv import max_length

    return x.shape[-1] <= max_length()


def gated_fftconv(
    x0: torch.Tensor, x1: torch.Tensor, v: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None, impl: str = "auto"
) -> torch.Tensor:
    """``x0 * (k * (x1 * v) + D * x1 * v)`` for (B, C, L) inputs: the last step of the Hyena
    recurrence with both gates. Fused Triton kernels where :func:`triton_supported`, else
    ``x0 * fftconv(x1 * v, k, d, impl)``."""
    if triton_supported(x1, impl):
        from hyenadna.ops.triton.gated_conv import gated_fftconv_triton

        _check_shapes(x1, k, d)
        return gated_fftconv_triton(x0, x1, v, k, d)
    return x0 * fftconv(x1 * v, k, d, impl=impl)
