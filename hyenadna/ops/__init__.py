"""Pure functions with autograd and no module state: the numerical kernels.

:mod:`hyenadna.ops.reference` holds the plain reference of the whole operator,
:mod:`hyenadna.ops.dispatch` the one function that picks the fast path.
"""

from hyenadna.ops.dispatch import Route, choose_path
from hyenadna.ops.fftconv import conv_fft_size, fftconv, filter_spectrum, next_fast_fft_size
from hyenadna.ops.reference import fftconv_ref, hyena_operator_ref, short_conv_ref

__all__ = [
    "Route",
    "choose_path",
    "conv_fft_size",
    "fftconv",
    "fftconv_ref",
    "filter_spectrum",
    "hyena_operator_ref",
    "next_fast_fft_size",
    "short_conv_ref",
]
