"""Sequence embeddings from a HyenaDNA backbone: the engine behind ``model.embed``, ``hyenadna embed``
and the scikit-learn transformer.

Batches are right-padded. HyenaDNA is causal, so a real token never sees the padding after it and
its hidden state equals the unpadded one: embeddings do not depend on batch size or on which
sequences share a batch. Sequences are grouped by length to waste little compute on padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

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
) -> tuple[list[np.ndarray] | None, list[np.ndarray] | None]:
    """Embed one batch of token-id arrays in one forward pass (two with ``rc_average``).

    Returns (pooled vectors (D,) per row, or None without ``pooling``; per-token states (L_i, D)
    per row, or None without ``per_token``), all float32. With ``rc_average`` the reverse
    complement is averaged in: pooled vectors directly, per-token states position by position on
    the forward strand (token i of the reverse complement is base L-1-i of the forward one).
    """
    device = next(model.parameters()).device
    batch = pad_ids(rows, side="right")
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    hidden = model.hidden_states(ids, layer=layer).float()
    hidden_rc = None
    if rc_average:
        hidden_rc = model.hidden_states(reverse_complement_batch(ids, mask), layer=layer).float()
    pooled = tokens = None
    if pooling is not None:
        vectors = pool(hidden, mask, pooling)
        if hidden_rc is not None:
            vectors = (vectors + pool(hidden_rc, mask, pooling)) / 2
        pooled = list(vectors.cpu().numpy())
    if per_token:
        tokens = []
        for i, row in enumerate(rows):
            states = hidden[i, : len(row)]
            if hidden_rc is not None:
                states = (states + hidden_rc[i, : len(row)].flip(0)) / 2
            tokens.append(states.cpu().numpy())
    return pooled, tokens


def embed_ids(
    model: HyenaDNA,
    rows: Sequence[np.ndarray],
    pooling: str = "mean",
    layer: int = -1,
    rc_average: bool = False,
) -> list[np.ndarray]:
    """Embed one batch: (D,) per row, or (L_i, D) per row for ``pooling="none"``."""
    if pooling == "none":
        return embed_batch(model, rows, None, layer, rc_average, per_token=True)[1]
    return embed_batch(model, rows, pooling, layer, rc_average)[0]


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first, so memory peaks early)."""
    if batch_size < 1:
        raise HyenaDNAError(f"batch_size must be positive, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


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
    tokenizer = tokenizer or CharacterTokenizer()
    rows = [tokenizer.encode_bases(s, name=f"sequence {i}") for i, s in enumerate(seqs)]
    for i, row in enumerate(rows):
        if not 1 <= len(row) <= model.config.l_max:
            raise HyenaDNAError(
                f"sequence {i} has {len(row):,} bases; the model takes 1 to {model.config.l_max:,} (its l_max)"
            )
    was_training = model.training
    model.eval()
    try:
        results: list[np.ndarray | None] = [None] * len(rows)
        for batch in length_batches([len(r) for r in rows], batch_size):
            for i, vec in zip(batch, embed_ids(model, [rows[i] for i in batch], pooling, layer, rc_average)):
                results[i] = vec
    finally:
        model.train(was_training)
    if pooling == "none":
        return results  # type: ignore[return-value]
    if not results:
        return np.zeros((0, model.config.d_model), dtype=np.float32)
    return np.stack(results)
