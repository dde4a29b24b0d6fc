"""What a run ran under, recorded beside its results.

Why: on a CPU, training with the same seed, data and versions gives the same weights bit for bit
only at the same thread count. The reductions in matrix products and convolutions are split
across threads, and a different split rounds differently (checked: a 30-step fine-tune from
``tiny-1k-chr20`` gave identical weights twice on one thread and other weights on two). Those
differences grow over a long run. So ``metrics.json`` (fine-tuning) and ``summary.json``
(pretraining) say which versions and how many threads the numbers came from, and
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


def runtime_facts(lightning_trainer: Any = None) -> dict[str, Any]:
    """The versions, intra-op threads and allocator of this process, whether CUDA and Triton
    are there, and, given the run's Lightning trainer, its accelerator and process count."""
    from importlib.metadata import PackageNotFoundError, version

    import lightning
    import torch

    from hyenadna.ops.triton import triton_available

    try:
        installed = version("hyenadna")
    except PackageNotFoundError:  # run from a source checkout that was never installed
        installed = None
    facts: dict[str, Any] = {
        "hyenadna": installed,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "threads": torch.get_num_threads(),
        "allocator": "jemalloc" if jemalloc_loaded() else "system",
        "cuda": torch.cuda.is_available(),
        "triton": triton_available(),
    }
    if lightning_trainer is not None:
        facts["accelerator"] = type(lightning_trainer.accelerator).__name__.removesuffix("Accelerator").lower()
        facts["processes"] = lightning_trainer.world_size
    return facts
