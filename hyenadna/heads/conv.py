"""The convolutional head: a small CNN that reads the backbone's states instead of one-hot bases.

The benchmark of DNA language models that the field compares against, BEND (Marin et al., 2024),
reads every model's embeddings with one small CNN and sets that beside the same kind of network
on one-hot bases. This head is that read-out for fine-tuning: convolution blocks (convolution,
batch norm, ReLU, max pooling by 2, as :class:`~hyenadna.heads.cnn.ConvClassifier` stacks them)
over each position's state, then the flattened map into the linear head's output layer (and its
``hidden`` layer, if any). With the CNN baseline's widths, the two stacks differ in what they read
(their dense layers still differ: GELU against ReLU, the heads' dropout and initialisation), so
the two models' scores say what the backbone's states add over the bases themselves.
Like the positional head, it reads fixed places in the window, so inputs are at most the longest
training sequence, aligned at their first base, zero states after their last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.base import state_width
from hyenadna.heads.linear import LinearHead
from hyenadna.heads.positional import positional_states, read_length

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig
    from hyenadna.model.hyena_dna import HyenaDNA

POOL = 2
"""Max-pooling factor after each convolution block (the CNN baseline's default)."""


def pooled_length(length: int, blocks: int) -> int:
    """What ``blocks`` convolution blocks leave of a ``length``-token input (each pools by
    :data:`POOL`, rounding down); 0: nothing left to read."""
    return length // POOL**blocks


def conv_blocks(channels_in: int, channels: list[int], kernel_size: int, pool: int = POOL) -> nn.Sequential:
    """Convolution ("same" padding), batch norm, ReLU and max pooling by ``pool``, per entry of
    ``channels``, from ``channels_in`` input channels: the CNN baseline's stack and this head's."""
    layers: list[nn.Module] = []
    for width in channels:
        layers += [nn.Conv1d(channels_in, width, kernel_size, padding="same"), nn.BatchNorm1d(width),
                   nn.ReLU(), nn.MaxPool1d(pool)]  # fmt: skip
        channels_in = width
    return nn.Sequential(*layers)


class ConvHead(LinearHead):
    """States (B, L, D) of inputs up to ``train_length`` tokens -> conv blocks -> flatten -> the
    linear head's layers. ``dropout`` applies to the flattened map (and after ``hidden``). With
    ``rc_conjoin`` the head reads each strand in its own pass, so in training each strand is
    normalised by its own batch and the running statistics move twice a step."""

    kind = "conv"

    def __init__(self, backbone: HyenaDNA, config: HeadConfig) -> None:
        length = read_length(backbone, config)
        flat = pooled_length(length, len(config.conv_channels))
        if flat < 1:
            raise HyenaDNAError(
                f"the conv head's {len(config.conv_channels)} blocks pool a {length}-token input to nothing; "
                "use fewer --head.conv_channels"
            )
        blocks = conv_blocks(state_width(backbone, config), config.conv_channels, config.conv_kernel)
        super().__init__(backbone, config, features=config.conv_channels[-1] * flat)
        self.blocks = blocks  # head.safetensors keys: blocks.*

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = self.config.train_length
        states = positional_states(hidden, attention_mask, length).view(hidden.shape[0], length, hidden.shape[-1])
        return self.blocks(states.transpose(1, 2).to(self.weight.dtype)).flatten(1)

    def max_length(self, backbone: HyenaDNA) -> int:
        return int(self.config.train_length)
