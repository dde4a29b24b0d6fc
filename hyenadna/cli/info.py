"""``hyenadna info``: a model's configuration and size, and the runtime it would run under."""

from __future__ import annotations


def run_info(model: str = "tiny-1k") -> dict:
    """Print a model's configuration and parameter count, and the runtime it would run under.

    Args:
        model: a preset or a model folder.
    """
    import torch

    from hyenadna.cli.runtime import jemalloc_loaded
    from hyenadna.model import load
    from hyenadna.ops.triton import triton_available

    net = load(model)
    runtime = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "allocator": "jemalloc" if jemalloc_loaded() else "system",
        "cuda": torch.cuda.is_available(),
        "triton": triton_available(),
    }
    return {**net.config.to_dict(), "parameters": net.num_parameters(), "runtime": runtime}
