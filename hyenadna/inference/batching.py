"""The one batching engine of inference over many sequences.

``model.embed``, ``model.score``, the HDF5 export, ``predict`` and fine-tuning's evaluation all
do the same four things, here once: encode each sequence to token ids (one length check, one
message naming the record), group sequences of similar length into batches (little compute spent
on padding; longest first, so that memory peaks at once), run one function per batch, and
scatter the per-row results back into input order, with an optional progress bar.

Batches are right-padded by the callers. HyenaDNA is causal, so a real token never sees the
padding after it: results do not depend on batch size or on which sequences share a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from hyenadna.data.tokenizer import CharacterTokenizer, length_batches
from hyenadna.errors import HyenaDNAError

T = TypeVar("T")


def encode_sequences(
    seqs: Sequence[str],
    l_max: int,
    names: Sequence[str] | None = None,
    min_bases: int = 1,
    tokenizer: CharacterTokenizer | None = None,
    purpose: str = "the model",
) -> list[np.ndarray]:
    """Token ids (no specials) of each sequence, refusing one outside ``min_bases .. l_max`` with
    a message that names it (``names[i]``, else "sequence i") and what takes that range."""
    tokenizer = tokenizer or CharacterTokenizer()
    rows = []
    for i, seq in enumerate(seqs):
        name = names[i] if names is not None else f"sequence {i}"
        ids = tokenizer.encode_bases(seq, name=name)
        check_length(len(ids), l_max, name, min_bases, purpose)
        rows.append(ids)
    return rows


def check_length(bases: int, l_max: int, name: str, min_bases: int = 1, purpose: str = "the model") -> None:
    """The one length check: "``name`` has N bases; ``purpose`` takes ``min_bases`` to l_max"."""
    if not min_bases <= bases <= l_max:
        raise HyenaDNAError(
            f"{name} has {bases:,} bases; {purpose} takes {min_bases:,} to {l_max:,} (the model's l_max)"
        )


def run_batched(
    rows: Sequence[np.ndarray],
    batch_size: int,
    fn: Callable[[list[np.ndarray]], Sequence[T]],
    progress: bool = False,
    desc: str = "",
) -> list[T]:
    """``fn`` over length-sorted batches of ``rows``, its per-row results in input order."""
    results: list[Any] = [None] * len(rows)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(rows), unit=" seq", desc=desc, mininterval=1.0)
    for batch in length_batches([len(r) for r in rows], batch_size):
        for i, value in zip(batch, fn([rows[i] for i in batch]), strict=True):
            results[i] = value
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return results
