"""The dtype the fused CPU training functions run their matrix products in.

Lightning's ``bf16-mixed`` on a CPU wraps the forward pass in ``torch.autocast("cpu",
torch.bfloat16)``. Plain autograd under autocast loses the hand-written backward passes
(:mod:`hyenadna.ops.fused_operator`, :mod:`hyenadna.ops.mlp`) and pays for casts around every
op. On CPUs with AMX (Intel Sapphire Rapids and later) a bfloat16 matrix product runs several
times faster than a float32 one, so under CPU bfloat16 autocast the fused functions keep their
hand-written backward passes and run every matrix product in bfloat16, accumulated in float32
by oneDNN and rounded to bfloat16 as autocast rounds ``F.linear``'s output (a weight gradient:
one product per batch entry, summed in float32); the short and long convolutions, the gates
and the FFTs stay in float32, and the MLP's hidden layer is bfloat16 as under autocast. The
README's "Training throughput" has the measurements.
"""

from __future__ import annotations

import torch


def matmul_dtype(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype | None:
    """The dtype the fused functions' matrix products take for input ``x`` and weights like
    ``weight``: ``None`` (their own, float32 or float64) without autocast, bfloat16 under the
    CPU's bfloat16 autocast of a float32 input with float32 weights; elsewhere (CUDA autocast,
    CPU float16 autocast, mixed dtypes) the fused functions do not apply and
    :func:`fused_applies` says so."""
    cpu_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    if x.device.type == "cpu" and cpu_bf16 and x.dtype == weight.dtype == torch.float32:
        return torch.bfloat16
    return None


def fused_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the fused training functions take an input like ``x`` with weights like
    ``weight``: float32/float64 of one dtype without autocast, or float32 under the CPU's
    bfloat16 autocast (see the module docstring)."""
    if x.dtype not in (torch.float32, torch.float64) or weight.dtype != x.dtype:
        return False
    return not torch.is_autocast_enabled(x.device.type) or matmul_dtype(x, weight) is not None


def cast(t: torch.Tensor | None, dtype: torch.dtype | None) -> torch.Tensor | None:
    """``t`` in ``dtype`` (``None``: as it is), strides kept, so a transposed view stays one."""
    return t if t is None or dtype is None or t.dtype == dtype else t.to(dtype)
