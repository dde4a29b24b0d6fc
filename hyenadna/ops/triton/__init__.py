"""Triton kernels for the Hyena operator's gated long convolution (GPU; CPU under
``TRITON_INTERPRET=1`` for tests). Imported lazily: triton is optional and only used on CUDA."""

from __future__ import annotations

import functools
import os


@functools.cache
def triton_available() -> bool:
    """Whether triton imports (it is an optional dependency)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def output_buffer(shape: tuple[int, ...], dtype, device):
    """A fresh buffer for a kernel to write: uninitialised, or filled with NaN when
    ``HYENADNA_POISON_OUTPUTS=1`` (the tests set it), so that an element a kernel fails to
    write shows up as NaN instead of as whatever the allocator left there."""
    import torch

    if os.environ.get("HYENADNA_POISON_OUTPUTS", "0") not in ("", "0"):
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)
