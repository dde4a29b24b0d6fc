"""The one place that picks how a Hyena layer runs.

:func:`choose_path` reads the input (device, dtype, length), the grad and autocast modes and
the model's settings (``fftconv_impl``, the chunking thresholds, train or eval mode), and
returns a :class:`Route`: the operator's path and the MLP's, each a function the module calls
(``route.operator(x, layer, recompute)``), and whether the model runs its blocks chunk by
chunk. Every path computes :func:`hyenadna.ops.reference.hyena_operator_ref`, and
``tests/ops/test_paths.py`` holds each one to it on random inputs at lengths on both sides of every
threshold below. Which Triton kernels run for a length (one program, persistent four-step,
separate four-step steps) is the planner's choice behind the ``triton`` path
(:func:`hyenadna.ops.triton.gated_conv.gated_fftconv_triton`), checked against the device's
shared memory before anything is launched (:mod:`hyenadna.ops.triton.fit`).

On the CPU (first match):

================= ================================================ ==========================================
operator path     taken when                                        why (measured on the development machines)
================= ================================================ ==========================================
``reference``     ``fftconv_impl="ref"``                           the yardstick; HyenaDNA's own arithmetic
``triton``        ``fftconv_impl="triton"`` (the interpreter, for  the GPU kernels' arithmetic, tested
                  tests: ``TRITON_INTERPRET=1``)
``chunked``       no grad, eval mode, 0 < ``inference_chunk`` < L, whole blocks in place in three full buffers:
                  and the caller runs whole blocks (the model)     3.0x the reference at 160k-1M bases in 0.28x
                                                                   its memory (CPU)
``channels_last`` no grad, otherwise                               the projections' layout, no transposes, the
                                                                   filters' spectra cached across calls
``fused``         grad, float32/float64 weights and input of one   one autograd function, hand-written backward
                  dtype without autocast, or float32 under the     with real FFTs: 2.6x the reference training
                  CPU's bfloat16 autocast (products in bfloat16,   step at 32k; bfloat16 products on AMX:
                  :mod:`hyenadna.ops.precision`)                   benchmarks/train_throughput.py
``autograd``      grad, otherwise (half precision, float64 or      plain autograd in the FFT's layout
                  float16 under autocast)
================= ================================================ ==========================================

On CUDA the chunked path runs only when asked (``cuda_inference_chunk``, a memory budget: it is
2.5-7x slower than the reference there), float64 keeps torch.fft, and every other (grad mode,
length) goes to the path that measured fastest, :data:`CUDA_ROUTES` (``fftconv_impl="torch"``:
the fastest torch path of the same table). A Triton plan that does not fit the device's shared
memory falls back to the table's torch path, with one warning.

The MLP follows: ``fused`` when gradients flow through float32/float64 weights without autocast
or float32 ones under the CPU's bfloat16 autocast (saves a quarter of the block's activations),
else ``autograd``; under ``reference`` it is plain autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from hyenadna.config import IMPLEMENTATIONS
from hyenadna.errors import HyenaDNAError
from hyenadna.ops.operator_paths import (
    mlp_autograd,
    mlp_fused,
    run_autograd,
    run_channels_last,
    run_fused,
    run_reference,
    run_triton,
)
from hyenadna.ops.precision import fused_applies

TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# CUDA: by grad mode, for lengths up to each bound (first match), the fastest path and the
# fastest torch path (fftconv_impl="torch", and the fallback where a Triton plan does not fit
# the device), as measured by benchmarks/gpu_vs_attention.py (H200, bf16 autocast, large-1m's
# d_model 256; benchmarks/results/gpu_vs_attention_*.json and the README's table).
# Model level, ms (2026-12-04, torch 2.11 + CUDA 13, triton 3.6):
#   inference  8k x 32: triton 51.5, channels_last 70.6, reference 79.6; 64k x 4: 95.0 / 88.5 / 96.3
#              (triton keeps 4.9 GB against 6.9); 1M x 1: 628 / 496 / 553
#   training   1k x 256: triton 119, autograd 232; 8k x 32: 145 / 241; 64k x 4: 246 / 280;
#              256k x 1: 347 / 286; 1M x 1: triton 1,693 ms in 131 GB, autograd out of memory (141 GB)
CUDA_ROUTES: dict[bool, tuple[tuple[float, str, str], ...]] = {
    False: ((1 << 16, "triton", "channels_last"), (math.inf, "channels_last", "channels_last")),  # inference
    True: (  # "fused" (the hand-written float32 backward) becomes "autograd" under autocast and half precision
        (1 << 16, "triton", "fused"),
        (1 << 18, "fused", "fused"),
        (math.inf, "triton", "fused"),  # the only path that fits 1M bases in a card's memory
    ),
}


class Path(NamedTuple):
    """One way to run a layer: its name (the tables') and the function the module calls,
    ``run(x, layer, recompute)``. A path equals its name (``route.operator == "triton"``)."""

    name: str
    run: Callable[..., torch.Tensor]

    def __call__(self, x: torch.Tensor, layer, recompute: bool = False) -> torch.Tensor:
        return self.run(x, layer, recompute)

    def __eq__(self, other: object) -> bool:
        return self.name == other if isinstance(other, str) else tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.name)


OPERATOR_PATHS = {
    "reference": Path("reference", run_reference),
    "triton": Path("triton", run_triton),
    "channels_last": Path("channels_last", run_channels_last),
    "fused": Path("fused", run_fused),
    "autograd": Path("autograd", run_autograd),
    # the model runs whole blocks chunk by chunk (Block.forward_chunked_); a single layer asked
    # to run the route itself computes the same numbers in the projections' layout
    "chunked": Path("chunked", run_channels_last),
}
MLP_PATHS = {
    "fused": Path("fused", mlp_fused),
    "autograd": Path("autograd", mlp_autograd),
    "chunked": Path("chunked", mlp_autograd),
}


class Route(NamedTuple):
    """How one Hyena layer runs (module docstring): ``operator`` and ``mlp`` are the
    :class:`Path` objects the modules call."""

    operator: Path
    mlp: Path

    @property
    def chunked(self) -> bool:
        """Whether the model runs whole blocks chunk by chunk (:meth:`Block.forward_chunked_`)."""
        return self.operator.name == "chunked"


def _route(operator: str, mlp: str) -> Route:
    return Route(OPERATOR_PATHS[operator], MLP_PATHS[mlp])


def cuda_route(grad: bool, length: int) -> tuple[str, str]:
    """(fastest path, fastest torch path) of :data:`CUDA_ROUTES` for a grad mode and length."""
    return next((best, torch_best) for bound, best, torch_best in CUDA_ROUTES[grad] if length <= bound)


def kernel_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the long convolution's kernels see for an operator input ``x``: the autocast
    dtype under autocast (the in-projection's output), else ``x``'s."""
    if torch.is_autocast_enabled(x.device.type) and x.dtype == torch.float32:
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def triton_applies(
    device: torch.device,
    dtype: torch.dtype,
    length: int,
    impl: str,
    batch: int = 1,
    channels: int = 1,
    grad: bool | None = None,
) -> bool:
    """Whether the Triton kernels run for a (batch, channels, length) input of ``dtype`` on
    ``device``: ``impl="triton"`` (refused with a clear error where the kernels cannot run at
    all: no triton, float64, a CPU without the interpreter), or
    ``"auto"`` on CUDA with triton installed for float32 and half inputs (float64 keeps torch's
    float64 FFTs; the kernels accumulate in float32), for lengths up to the kernels' limit and
    plans that fit the device's shared memory (:func:`hyenadna.ops.triton.fit.plan_fits`;
    otherwise torch.fft runs, with one warning)."""
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
    from hyenadna.ops.triton.fit import plan_fits
    from hyenadna.ops.triton.long_conv import max_length

    grad = torch.is_grad_enabled() if grad is None else grad
    return length <= max_length() and plan_fits(device, dtype, batch, channels, length, grad)


def choose_path(
    x: torch.Tensor,
    weight: torch.Tensor,
    impl: str = "auto",
    inference_chunk: int = 0,
    training: bool = False,
    cuda_inference_chunk: int = 0,
) -> Route:
    """The route (module docstring's tables) for input ``x`` (B, L, d) through a layer whose
    weights are like ``weight``, under the current grad and autocast modes. ``impl`` is the
    config's ``fftconv_impl``; ``inference_chunk`` and ``cuda_inference_chunk`` its chunking
    thresholds on the CPU and on CUDA, 0 where the caller runs a single layer (only the model
    runs whole blocks chunk by chunk); ``training`` the module's mode (dropout must see whole
    tensors)."""
    if impl not in IMPLEMENTATIONS:
        raise HyenaDNAError(f"unknown fftconv implementation {impl!r}; choose from {IMPLEMENTATIONS}")
    grad = torch.is_grad_enabled()
    fused_mlp = grad and fused_applies(x, weight)
    mlp = "fused" if fused_mlp else "autograd"
    batch, length, channels = x.shape[0] if x.dim() == 3 else 1, x.shape[-2], x.shape[-1]
    if impl == "ref":
        return _route("reference", "autograd")
    cuda = x.device.type == "cuda"
    dtype = kernel_dtype(x)
    if not cuda or x.dtype == torch.float64:
        if triton_applies(x.device, dtype, length, impl, batch, channels):
            return _route("triton", mlp)
        if not grad:
            chunked = not training and 0 < (cuda_inference_chunk if cuda else inference_chunk) < length
            return _route("chunked", "chunked") if chunked else _route("channels_last", mlp)
        return _route("fused" if fused_mlp else "autograd", mlp)
    operator = cuda_operator_path(x.device, dtype, (batch, channels, length), impl, grad, training,
                                  cuda_inference_chunk, fused_mlp)  # fmt: skip
    return _route(operator, "chunked" if operator == "chunked" else mlp)


def cuda_operator_path(
    device: torch.device,
    dtype: torch.dtype,
    shape: tuple[int, int, int],
    impl: str,
    grad: bool,
    training: bool = False,
    cuda_inference_chunk: int = 0,
    fused_ok: bool = False,
) -> str:
    """The operator path on CUDA for a (batch, channels, length) input whose kernels see
    ``dtype``: chunked only when asked (``cuda_inference_chunk``), else :data:`CUDA_ROUTES`'
    fastest path, its torch path under ``impl="torch"`` or where the Triton plan does not fit
    the device (:func:`triton_applies`); ``fused`` only where the hand-written backward applies
    (``fused_ok``)."""
    batch, channels, length = shape
    if impl == "triton" and triton_applies(device, dtype, length, impl, batch, channels, grad):
        return "triton"  # asked for by name: before chunking, as on the CPU
    if not grad and not training and 0 < cuda_inference_chunk < length:  # asked for: a memory budget
        return "chunked"
    best, torch_best = cuda_route(grad, length)
    if best == "triton" and not triton_applies(device, dtype, length, impl, batch, channels, grad):
        best = torch_best
    if best == "fused" and not fused_ok:
        best = "autograd"
    return best
