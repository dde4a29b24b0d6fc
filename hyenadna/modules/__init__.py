"""Layers of the HyenaDNA model: implicit filter, Hyena operator, residual block."""

from hyenadna.modules.block import Block, Mlp
from hyenadna.modules.filter import ImplicitFilter
from hyenadna.modules.operator import HyenaOperator

__all__ = ["Block", "HyenaOperator", "ImplicitFilter", "Mlp"]
