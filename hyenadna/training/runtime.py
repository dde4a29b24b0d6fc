"""What a run ran under, recorded beside its results.

Why: on a CPU, training with the same seed, data and versions gives the same weights bit for bit
only at the same thread count. The reductions in matrix products and convolutions are split
across threads, and a different split rounds differently (checked: a 30-step fine-tune from
``tiny-1k-chr20`` gave identical weights twice on one thread and other weights on two). Those
differences grow over a long run, and so do those of other vector kernels (AVX2 against
AVX-512) or another card. So ``metrics.json`` (fine-tuning) and ``summary.json`` (pretraining)
say which versions, CPU kernels, card and how many threads the numbers came from, and
``hyenadna info`` prints the same for the process it would run in.
"""

from __future__ import annotations

from typing import Any


def jemalloc_loaded() -> bool:
    """Whether jemalloc is mapped into this process (Linux; ``False`` elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("jemalloc" in line for line in maps)
    except OSError:
        return False


def distribution_version(name: str) -> str | None:
    """The installed version of the distribution ``name`` (``None`` where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_has_amx() -> bool | None:
    """Whether this CPU has AMX tiles (bfloat16 matrix units: Intel Sapphire Rapids and later);
    ``None`` where torch cannot say (the check is torch's private ``torch.cpu`` probe)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return None if probe is None else bool(probe())


def runtime_facts(lightning_trainer: Any = None) -> dict[str, Any]:
    """The versions, the CPU's vector kernels, intra-op threads and allocator of this process,
    whether CUDA (its version and card) and Triton are there, and, given the run's Lightning
    trainer, its accelerator, process count and precision."""
    import torch

    from hyenadna.ops.triton import triton_available
    from hyenadna.version import __version__

    cuda = torch.cuda.is_available()
    facts: dict[str, Any] = {
        "hyenadna": __version__,  # the code that ran, not whatever metadata is on the path
        "torch": torch.__version__,
        "lightning": distribution_version("lightning"),  # read, not imported: info never loads Lightning
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector kernels: AVX2, AVX-512...
        "cpu_amx": cpu_has_amx(),  # bfloat16 matrix units: whether bf16-mixed pays on this CPU
        "cuda_version": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "allocator": "jemalloc" if jemalloc_loaded() else "system",
        "cuda": cuda,
        "triton": triton_available(),
    }
    if cuda:
        facts["gpu"] = torch.cuda.get_device_name()
    if lightning_trainer is not None:
        facts["accelerator"] = type(lightning_trainer.accelerator).__name__.removesuffix("Accelerator").lower()
        facts["processes"] = lightning_trainer.world_size
        facts["precision"] = str(lightning_trainer.precision)
    return facts
