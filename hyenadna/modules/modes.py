"""Train and eval mode around a piece of inference.

Inference on a model the caller may be training (embedding, scoring or sampling in a callback,
attributions on a model being fine-tuned) must not see dropout, and must hand the model back in
the mode it came in: :func:`eval_mode` does both, also when the work raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

from torch import nn

AnyModule = TypeVar("AnyModule", bound=nn.Module)


@contextlib.contextmanager
def eval_mode(module: AnyModule) -> Iterator[AnyModule]:
    """``module`` in eval mode within the block, back in its own mode (train or eval) after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
