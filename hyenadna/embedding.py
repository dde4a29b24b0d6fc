"""Sequence embeddings from a HyenaDNA backbone: what ``model.embed``, ``hyenadna embed`` and the
scikit-learn transformer compute, one batch at a time, through the batching engine
(:mod:`hyenadna.batching`: right-padded, length-sorted batches, results in input order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from hyenadna.batching import encode_sequences, run_batched
from hyenadna.errors import HyenaDNAError
from hyenadna.modules.pooling import POOLINGS, pool, reverse_complement_batch
from hyenadna.tokenizer import CharacterTokenizer, pad_ids

if TYPE_CHECKING:
    from hyenadna.model import HyenaDNA

EMBED_POOLINGS = (*POOLINGS, "none")


def check_embed_options(model: HyenaDNA, pooling: str, layer: int) -> None:
    if pooling not in EMBED_POOLINGS:
        raise HyenaDNAError(f"pooling must be one of {EMBED_POOLINGS}, got {pooling!r}")
    n = model.config.n_layer
    if not -n - 1 <= layer <= n:
        raise HyenaDNAError(f"layer {layer} out of range for a model with {n} layers (use -{n + 1}..{n})")


@torch.inference_mode()
def embed_batch(
    model: HyenaDNA,
    rows: Sequence[np.ndarray],
    pooling: str | None = "mean",
    layer: int = -1,
    rc_average: bool = False,
    per_token: bool = False,
) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Embed one batch of token-id arrays in one forward pass (two with ``rc_average``).

    Returns, per row, (the pooled vector (D,), or None without ``pooling``; the per-token states
    (L_i, D), or None without ``per_token``), float32. With ``rc_average`` the reverse complement
    is averaged in: pooled vectors directly, per-token states position by position on the
    forward strand (token i of the reverse complement is base L-1-i of the forward one).
    """
    device = next(model.parameters()).device
    batch = pad_ids(rows, side="right")
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    hidden = model.hidden_states(ids, layer=layer).float()
    hidden_rc = None
    if rc_average:
        hidden_rc = model.hidden_states(reverse_complement_batch(ids, mask), layer=layer).float()
    pooled: list = [None] * len(rows)
    tokens: list = [None] * len(rows)
    if pooling is not None:
        vectors = pool(hidden, mask, pooling)
        if hidden_rc is not None:
            vectors = (vectors + pool(hidden_rc, mask, pooling)) / 2
        pooled = list(vectors.cpu().numpy())
    if per_token:
        for i, row in enumerate(rows):
            states = hidden[i, : len(row)]
            if hidden_rc is not None:
                states = (states + hidden_rc[i, : len(row)].flip(0)) / 2
            tokens[i] = states.cpu().numpy()
    return list(zip(pooled, tokens))


def embed_sequences(
    model: HyenaDNA,
    seqs: Sequence[str] | str,
    pooling: str = "mean",
    layer: int = -1,
    batch_size: int = 8,
    rc_average: bool = False,
    tokenizer: CharacterTokenizer | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Embeddings of DNA strings in input order: (N, D) float32, or a list of (L_i, D) for ``none``."""
    check_embed_options(model, pooling, layer)
    if isinstance(seqs, str):
        seqs = [seqs]
    rows = encode_sequences(seqs, model.config.l_max, tokenizer=tokenizer)
    per_token = pooling == "none"
    was_training = model.training
    model.eval()
    try:
        pairs = run_batched(
            rows, batch_size, lambda batch: embed_batch(model, batch, None if per_token else pooling, layer,
                                                        rc_average, per_token)
        )  # fmt: skip
    finally:
        model.train(was_training)
    results = [tokens if per_token else vector for vector, tokens in pairs]
    if per_token:
        return results
    if not results:
        return np.zeros((0, model.config.d_model), dtype=np.float32)
    return np.stack(results)
