"""Devices and dtypes a user names, checked before a model or a tensor is moved to them.

``torch`` accepts ``"cuda"`` on a machine without CUDA until the first tensor lands there (a
``pin_memory`` or lazy-init RuntimeError deep in a run), and a model cast to ``int64`` or
``complex64`` until its first FFT. Here each is one error naming the value.
"""

from __future__ import annotations

import torch

from hyenadna.errors import HyenaDNAError

MODEL_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
"""Dtypes a model's weights may take (the FFT convolutions run in float32 whatever they are);
integer or complex weights are no model."""


def check_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` as a torch device that exists on this machine (``None`` stays None)."""
    if device is None:
        return None
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise HyenaDNAError(f"unknown device {device!r} ({exc}): use cpu, cuda, cuda:N or auto") from None
    if found.type == "cuda":
        if not torch.cuda.is_available():
            raise HyenaDNAError(f"device {device!r}: torch sees no CUDA device on this machine; use cpu")
        if found.index is not None and found.index >= torch.cuda.device_count():
            raise HyenaDNAError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0.."
            )
    elif found.type == "mps" and not (torch.backends.mps.is_available()):
        raise HyenaDNAError(f"device {device!r}: torch sees no MPS device on this machine; use cpu")
    return found


def check_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``dtype`` (a torch dtype or its name) as one of :data:`MODEL_DTYPES` (``None`` stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in MODEL_DTYPES:
            raise HyenaDNAError(f"model dtype must be one of {', '.join(MODEL_DTYPES)}, got {dtype!r}")
        return MODEL_DTYPES[name]
    if dtype not in MODEL_DTYPES.values():
        raise HyenaDNAError(f"model dtype must be one of {', '.join(MODEL_DTYPES)}, got {dtype}")
    return dtype
