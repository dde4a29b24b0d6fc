"""The states a position-reading head (positional, conv) sees for one sequence, computed the plain
way: the backbone run on the sequence alone, unpadded; with ``bidirectional``, each base's state
beside the state of that base when the backbone reads the reverse complement alone."""

from __future__ import annotations

import numpy as np
import torch

from hyenadna.data.tokenizer import CharacterTokenizer, reverse_complement
from hyenadna.heads.task_model import SequenceModel


def unpadded_states(model: SequenceModel, seq: str) -> np.ndarray:
    """(len(seq), D) backbone states of ``seq`` run alone, in float64."""
    ids = torch.as_tensor(CharacterTokenizer().encode_bases(seq))[None]
    with torch.no_grad():
        return model.backbone.hidden_states(ids)[0].double().numpy()


def head_states(model: SequenceModel, seq: str) -> np.ndarray:
    """(len(seq), D or 2D): what the head reads at each base of ``seq``."""
    states = unpadded_states(model, seq)
    if model.head_config.bidirectional:
        states = np.concatenate([states, unpadded_states(model, reverse_complement(seq))[::-1]], axis=1)
    return states
