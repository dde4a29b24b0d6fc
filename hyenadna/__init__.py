"""hyenadna: long-context DNA language models with Hyena operators.

The public API: :class:`HyenaDNA` (the model), :class:`HyenaConfig` (its configuration and the
published presets), :class:`CharacterTokenizer`, :func:`load`, :class:`Tiling` (sequences longer
than the model), and :class:`HyenaDNAError`, the one exception type raised for mistakes in a
user's input.
"""

from __future__ import annotations

from hyenadna.config import PRESETS, HyenaConfig
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.tiling import Tiling
from hyenadna.model import HyenaDNA, load
from hyenadna.version import __version__

__all__ = ["PRESETS", "CharacterTokenizer", "HyenaConfig", "HyenaDNA", "HyenaDNAError", "Tiling", "__version__", "load"]
