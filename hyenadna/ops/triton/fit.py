"""Whether the Triton kernels of one call fit the running GPU, asked before any of them runs.

A kernel whose tiles need more shared memory than a block may hold compiles fine and fails
only when it is loaded (``OutOfResources``), possibly in the backward pass, long after the
forward committed to the path. :func:`plan_fits` instead lists every kernel the call would
launch (forward, and backward under autograd) with :func:`hyenadna.ops.triton.compile_check.
record_launches`, compiles each for the device through Triton's own cache (``warmup``: the
launch that follows reuses the binary) and compares its ``metadata.shared`` with the device's
opt-in limit. The answer is kept per (device, dtype, shape, grad mode); a call that does not
fit goes to torch.fft, with a warning the first time each is asked.

On the CPU interpreter there is no shared memory and nothing to check; the tests fake a
device through :func:`shared_memory_limit` and :func:`kernel_shared_bytes`.
"""

from __future__ import annotations

import functools
import warnings

import torch

from hyenadna.ops.triton.compile_check import gated_conv_specialisations, kernel_shared_bytes


def shared_memory_limit(device: torch.device) -> int | None:
    """Bytes of shared memory one block may use on ``device`` (the opt-in maximum), or
    ``None`` where nothing limits it (the CPU interpreter)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.get_device_properties(device).shared_memory_per_block_optin)


def _device_key(device: torch.device) -> tuple[str, int]:
    index = device.index if device.index is not None else (torch.cuda.current_device() if device.type == "cuda" else 0)
    return device.type, index


def plan_fits(device: torch.device, dtype: torch.dtype, batch: int, channels: int, length: int, grad: bool) -> bool:
    """Whether every kernel of a gated convolution of (batch, channels, length) inputs of
    ``dtype`` (and of its backward, with ``grad``) fits ``device``'s shared memory."""
    return _plan_fits(_device_key(device), dtype, batch, channels, length, grad)


@functools.lru_cache(maxsize=1024)
def _plan_fits(device_key: tuple[str, int], dtype: torch.dtype, batch: int, channels: int, length: int,
               grad: bool) -> bool:  # fmt: skip
    device = torch.device(*device_key)
    limit = shared_memory_limit(device)
    if limit is None:
        return True
    try:
        specs = gated_conv_specialisations([length], [dtype], grad=grad, batch=batch, channels=channels)
        too_large = [(spec, size) for spec in specs if (size := kernel_shared_bytes(spec, device)) > limit]
    except (AttributeError, TypeError) as error:  # a Triton whose warm-up API differs: the launch will tell
        warnings.warn(f"could not compile the Triton kernels ahead of their launch ({error}); launching them",
                      RuntimeWarning, stacklevel=4)  # fmt: skip
        return True
    except Exception as error:  # the kernels do not compile for this device: never launch them
        warnings.warn(f"the Triton long-convolution kernels for length {length} ({dtype}) do not compile for "
                      f"this GPU ({type(error).__name__}: {error}): that length runs through torch.fft instead",
                      RuntimeWarning, stacklevel=4)  # fmt: skip
        return False
    if too_large:
        spec, size = max(too_large, key=lambda item: item[1])
        warnings.warn(
            f"the Triton long-convolution kernels for length {length} ({dtype}) need {size:,} bytes of shared "
            f"memory ({spec.describe()}), more than this GPU's {limit:,}: that length runs through torch.fft "
            f"(cuFFT) instead",
            RuntimeWarning,
            stacklevel=4,
        )
        return False
    return True


def clear_cache() -> None:
    """Forget every answer (the tests change the limits they report)."""
    _plan_fits.cache_clear()
