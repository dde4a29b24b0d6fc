"""Layers of the HyenaDNA model: implicit filter, Hyena operator (with its decoding cache),
residual block, and the eval-mode context the inference services share."""

from hyenadna.modules.block import Block, Mlp
from hyenadna.modules.filter import ImplicitFilter
from hyenadna.modules.modes import eval_mode
from hyenadna.modules.operator import HyenaOperator, OperatorCache

__all__ = ["Block", "HyenaOperator", "ImplicitFilter", "Mlp", "OperatorCache", "eval_mode"]
