"""The model layer: :class:`HyenaDNA` (embeddings, Hyena blocks, final norm, tied LM head) and
:func:`load`, which gives one by preset, bundled name, folder or hub id."""

from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.model.load import load

__all__ = ["HyenaDNA", "load"]
