"""The one place that picks how a Hyena layer runs.

:func:`choose_path` reads the input (device, dtype, length), the grad and autocast modes and
the model's settings (``fftconv_impl``, ``inference_chunk``, train or eval mode), and returns a
:class:`Route`: the path of the Hyena operator and of the MLP. Every path computes
:func:`hyenadna.ops.reference.hyena_operator_ref`, and ``tests/test_paths.py`` holds each one
to it on random inputs at lengths on both sides of every threshold below.

=============== ================================================ ==========================================
operator path   taken when (first match)                          why (measured on the development machines)
=============== ================================================ ==========================================
``reference``   ``fftconv_impl="ref"``                           the yardstick; HyenaDNA's own arithmetic
``triton``      ``fftconv_impl="triton"``, or ``"auto"`` on CUDA  fused Monarch-FFT kernels on tensor cores;
                with triton installed, float32/bf16/fp16, any    short conv + split in one kernel
                grad mode, L up to the kernels' 8M positions
``chunked``     no grad, eval mode, 0 < ``inference_chunk`` < L,  whole blocks in place in three full buffers:
                and the caller runs whole blocks (the model)     3.0x the reference at 160k-1M bases in 0.28x
                                                                 its memory (CPU)
``channels_last`` no grad, otherwise                             the projections' layout, no transposes, the
                                                                 filters' spectra cached across calls
``fused``       grad, float32/float64 weights and input of one   one autograd function, hand-written backward
                dtype, autocast off                              with real FFTs: 2.6x the reference training
                                                                 step at 32k
``autograd``    grad, otherwise (half precision, autocast)       plain autograd in the FFT's layout
=============== ================================================ ==========================================

The MLP follows: ``chunked`` with the chunked operator (in-place sigmoid-form GELU), ``fused``
when gradients flow through float32/float64 weights without autocast (saves a quarter of the
block's activations), else ``autograd``; under ``reference`` it is plain autograd.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hyenadna.config import IMPLEMENTATIONS
from hyenadna.errors import HyenaDNAError

TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class Route(NamedTuple):
    """How one Hyena layer runs: the operator's path and the MLP's (module docstring)."""

    operator: str
    mlp: str


def hand_written_backward_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the fused training functions (:func:`hyenadna.ops.hyena_mixer.hyena_mixer`,
    :func:`hyenadna.ops.mlp.gelu_mlp`) take an input like ``x`` with weights like ``weight``:
    float32/float64, the same dtype, autocast off."""
    return (
        x.dtype in (torch.float32, torch.float64)
        and weight.dtype == x.dtype
        and not torch.is_autocast_enabled(x.device.type)
    )


def triton_applies(device: torch.device, dtype: torch.dtype, length: int, impl: str) -> bool:
    """Whether the Triton kernels run for an input of ``dtype`` and ``length`` on ``device``:
    ``impl="triton"`` (refused with a clear error where the kernels cannot run), or ``"auto"``
    on CUDA with triton installed for float32 and half inputs (float64 keeps torch's float64
    FFTs; the kernels accumulate in float32), for lengths up to the kernels' limit."""
    from hyenadna.ops.triton import interpreting, triton_available

    if impl not in ("auto", "triton"):
        return False
    if impl == "auto" and not (device.type == "cuda" and triton_available() and dtype in TRITON_DTYPES):
        return False
    if dtype not in TRITON_DTYPES:
        raise HyenaDNAError(f"fftconv_impl 'triton' takes float32, bfloat16 or float16 inputs, got {dtype}")
    if impl == "triton" and not triton_available():
        raise HyenaDNAError("fftconv_impl 'triton' needs the triton package (pip install triton)")
    if impl == "triton" and device.type != "cuda" and not interpreting():
        raise HyenaDNAError("fftconv_impl 'triton' runs on CUDA, or on the CPU with TRITON_INTERPRET=1")
    from hyenadna.ops.triton.long_conv import max_length

    return length <= max_length()


def choose_path(
    x: torch.Tensor, weight: torch.Tensor, impl: str = "auto", inference_chunk: int = 0, training: bool = False
) -> Route:
    """The route (module docstring's table) for input ``x`` (B, L, d) through a layer whose
    weights are like ``weight``, under the current grad and autocast modes. ``impl`` is the
    config's ``fftconv_impl``; ``inference_chunk`` its chunking threshold, 0 where the caller
    runs a single layer (only the model runs whole blocks chunk by chunk); ``training`` the
    module's mode (dropout must see whole tensors)."""
    if impl not in IMPLEMENTATIONS:
        raise HyenaDNAError(f"unknown fftconv implementation {impl!r}; choose from {IMPLEMENTATIONS}")
    grad = torch.is_grad_enabled()
    fused_mlp = grad and hand_written_backward_applies(x, weight)
    mlp = "fused" if fused_mlp else "autograd"
    length = x.shape[-2]
    if impl == "ref":
        return Route("reference", "autograd")
    if triton_applies(x.device, x.dtype, length, impl):
        return Route("triton", mlp)
    if not grad:
        if not training and 0 < inference_chunk < length:
            return Route("chunked", "chunked")
        return Route("channels_last", mlp)
    return Route("fused" if fused_mlp else "autograd", mlp)
