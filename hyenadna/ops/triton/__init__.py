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
