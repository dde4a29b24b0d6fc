"""Pure functions with autograd and no module state: the numerical kernels."""

from hyenadna.ops.fftconv import fftconv, fftconv_ref, filter_spectrum, next_fast_fft_size

__all__ = ["fftconv", "fftconv_ref", "filter_spectrum", "next_fast_fft_size"]
