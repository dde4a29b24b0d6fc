"""hyenadna: long-context DNA language models with Hyena operators.

The public API: :class:`HyenaDNA` (the model), :class:`HyenaConfig` (its configuration and the
published presets), :class:`CharacterTokenizer`, :func:`load`, and :class:`HyenaDNAError`, the
one exception type raised for mistakes in a user's input.
"""

from __future__ import annotations

import os
from pathlib import Path

from hyenadna.config import PRESETS, HyenaConfig
from hyenadna.errors import HyenaDNAError
from hyenadna.model import HyenaDNA
from hyenadna.tokenizer import CharacterTokenizer

__version__ = "0.1.0"
__all__ = ["PRESETS", "CharacterTokenizer", "HyenaConfig", "HyenaDNA", "HyenaDNAError", "load"]


def load(name_or_path: str | os.PathLike, **overrides) -> HyenaDNA:
    """A model from a preset name (random initialisation) or a folder (ours or released).

    ``overrides`` replace config fields, for example ``fftconv_impl="ref"``.
    """
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        return HyenaDNA(HyenaConfig.from_preset(name_or_path, **overrides))
    if Path(name_or_path).exists():
        return HyenaDNA.from_pretrained(name_or_path, **overrides)
    known = ", ".join(sorted(PRESETS))
    raise HyenaDNAError(f"unknown model {name_or_path!r}: neither a preset ({known}) nor an existing path")
