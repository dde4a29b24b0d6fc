"""The positional head: a linear layer on every position's state, for labels that sit at a fixed
place in the window (a splice site at its centre), as a CNN's flatten-and-dense head reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.base import state_width
from hyenadna.heads.linear import LinearHead
from hyenadna.modules.pooling import real_token_bounds

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig
    from hyenadna.model.hyena_dna import HyenaDNA


class PositionalHead(LinearHead):
    """Inputs of at most ``train_length`` tokens, aligned at their first base (either padding
    side), their states flattened in position order; shorter rows are zero-filled."""

    kind = "positional"

    def __init__(self, backbone: HyenaDNA, config: HeadConfig) -> None:
        length = read_length(backbone, config)
        width = length * state_width(backbone, config)
        super().__init__(backbone, config, features=width, std=backbone.config.initializer_range / length**0.5)

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return positional_states(hidden, attention_mask, self.config.train_length)

    def max_length(self, backbone: HyenaDNA) -> int:
        return int(self.config.train_length)


def read_length(backbone: HyenaDNA, config: HeadConfig) -> int:
    """The fixed window a position-reading head (``positional``, ``conv``) reads: its training
    length, refused naming the head's kind when unknown or beyond the backbone's ``l_max``."""
    length, l_max = config.train_length, backbone.config.l_max
    if not length or length > l_max:
        raise HyenaDNAError(f"the {config.kind} head needs train_length in [1, l_max={l_max}], got {length}")
    return int(length)


def positional_states(hidden: torch.Tensor, attention_mask: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length * D): each row's real states from its first base on (either padding side),
    zeros after its last, flattened in position order. Rows longer than ``length`` are refused."""
    first, last = real_token_bounds(attention_mask)
    longest = int((last - first + 1).max())
    if longest > length:
        raise HyenaDNAError(
            f"a sequence of {longest} tokens is longer than the {length} the head reads (its training length)"
        )
    positions = torch.arange(length, device=hidden.device)
    index = (first[:, None] + positions).clamp_max(hidden.shape[1] - 1)
    states = hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    real = (first[:, None] + positions) <= last[:, None]
    return (states * real.unsqueeze(-1).to(states.dtype)).flatten(1)
