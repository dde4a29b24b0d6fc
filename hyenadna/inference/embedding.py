"""Sequence embeddings from a HyenaDNA backbone: what ``model.embed``, ``hyenadna embed`` and the
scikit-learn transformer compute, one batch at a time, through the batching engine
(:mod:`hyenadna.inference.batching`: right-padded, length-sorted batches, results in input order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from hyenadna.data.tokenizer import CharacterTokenizer, pad_ids, reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.batching import encode_sequences, run_batched
from hyenadna.inference.tiling import Tiling, tiled_per_base, too_long_hint
from hyenadna.modules.modes import eval_mode
from hyenadna.modules.pooling import POOLINGS, pool, reverse_complement_batch

if TYPE_CHECKING:
    from hyenadna.model.hyena_dna import HyenaDNA

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
    tiling: Tiling | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Embeddings of DNA strings in input order: (N, D) float32, or a list of (L_i, D) for ``none``.
    ``tiling``: sequences longer than the model are embedded window by window, their per-base
    states stitched and then pooled (see hyenadna.inference.tiling); without it they are refused."""
    check_embed_options(model, pooling, layer)
    if isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    l_max = model.config.l_max
    if tiling is not None and tiling.enabled and any(len(s) > l_max for s in seqs):
        tiling.check(l_max)
        return _tiled_embeddings(model, seqs, pooling, layer, batch_size, rc_average, tokenizer, tiling)
    too_long_hint(seqs, l_max)
    rows = encode_sequences(seqs, l_max, tokenizer=tokenizer)
    per_token = pooling == "none"
    with eval_mode(model):
        pairs = run_batched(
            rows, batch_size, lambda batch: embed_batch(model, batch, None if per_token else pooling, layer,
                                                        rc_average, per_token)
        )  # fmt: skip
    results = [tokens if per_token else vector for vector, tokens in pairs]
    if per_token:
        return results
    if not results:
        return np.zeros((0, model.config.d_model), dtype=np.float32)
    return np.stack(results)


def pool_states(states: np.ndarray, pooling: str) -> np.ndarray:
    """(L, D) per-base states of one sequence pooled to (D,) by :func:`pool` itself, so that a
    stitched sequence is pooled as a batch is."""
    return pool(torch.from_numpy(np.ascontiguousarray(states))[None], how=pooling)[0].numpy()


def _tiled_embeddings(model, seqs, pooling, layer, batch_size, rc_average, tokenizer, tiling):
    """Per-base states of every sequence (stitched from windows where longer than the model),
    averaged with the reverse strand's base by base or pooled strand by strand as the untiled
    path does, then pooled."""

    def states_of(strings: list[str]) -> list[np.ndarray]:
        def windows(pieces: list[str]) -> list[np.ndarray]:
            rows = encode_sequences(pieces, model.config.l_max, tokenizer=tokenizer)
            pairs = run_batched(rows, batch_size, lambda batch: embed_batch(model, batch, None, layer, False, True))
            return [tokens for _, tokens in pairs]

        return tiled_per_base(strings, model.config.l_max, tiling, windows)

    with eval_mode(model):
        forward = states_of(seqs)
        reverse = states_of([reverse_complement(s) for s in seqs]) if rc_average else None
    if pooling == "none":
        if reverse is None:
            return forward
        return [(f + r[::-1]) / 2 for f, r in zip(forward, reverse)]
    vectors = [pool_states(f, pooling) for f in forward]
    if reverse is not None:
        vectors = [(v + pool_states(r, pooling)) / 2 for v, r in zip(vectors, reverse)]
    return np.stack(vectors).astype(np.float32)
