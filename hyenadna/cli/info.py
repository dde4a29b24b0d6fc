"""``hyenadna info``: a model's configuration and size, and the runtime it would run under."""

from __future__ import annotations


def run_info(model: str = "tiny-1k") -> dict:
    """Print a model's configuration and parameter count, and the runtime it would run under.

    Args:
        model: a preset or a model folder.
    """
    from hyenadna.model import load
    from hyenadna.training.runtime import runtime_facts

    net = load(model)
    return {**net.config.to_dict(), "parameters": net.num_parameters(), "runtime": runtime_facts()}
