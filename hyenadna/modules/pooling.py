"""Pooling of per-token hidden states into one vector per sequence, aware of padding.

``attention_mask`` (B, L) is True on real tokens. Padding may sit on either side: ``last`` and
``first`` find the last and first real token of each row, so the same code serves left-padded
batches (HyenaDNA's reference convention) and right-padded ones (ours by default, since a causal
model then gives real tokens exactly the states they would have without padding).
"""

from __future__ import annotations

from typing import Literal

import torch

from hyenadna.errors import HyenaDNAError

Pooling = Literal["mean", "last", "first", "max", "center"]
POOLINGS = ("mean", "last", "first", "max", "center")


def real_token_bounds(attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the first and the last real token of each row (rows must have at least one)."""
    mask = attention_mask.bool()
    if not bool(mask.any(dim=1).all()):
        raise HyenaDNAError("a sequence in the batch has no real tokens")
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    first = torch.where(mask, positions, mask.shape[1]).min(dim=1).values
    last = torch.where(mask, positions, -1).max(dim=1).values
    return first, last


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, how: Pooling = "mean") -> torch.Tensor:
    """(B, L, D) hidden states to (B, D), ignoring padded positions.

    ``center`` reads the middle real token of each row (of an even count, the right of the two
    middle ones: index ``L // 2`` of ``L`` real tokens, where a variant's reference base and a
    resized summit sit): the state at the site of a label at the centre of its window (a splice
    boundary, a variant). A causal backbone's state there has read the left half and the centre
    base only; ``bidirectional`` heads join a state that has read the right half too.
    """
    if how not in POOLINGS:
        raise HyenaDNAError(f"pooling must be one of {POOLINGS}, got {how!r}")
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    mask = attention_mask.bool()
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if how in ("first", "last", "center"):
        first, last = real_token_bounds(mask)
        return hidden[rows, {"first": first, "last": last, "center": (first + last + 1) // 2}[how]]
    if how == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)
    filled = hidden.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    return filled.max(dim=1).values


def reverse_complement_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Reverse-complement the real tokens of each row in place of themselves; padding stays put.

    A right-padded row stays right-padded (and left stays left), so a causal model sees the
    reverse strand exactly as it would see it unpadded.
    """
    from hyenadna.data.tokenizer import ID_COMPLEMENT

    flipped = torch.gather(input_ids, 1, mirror_index(attention_mask))
    complemented = ID_COMPLEMENT.to(input_ids.device)[flipped]
    return torch.where(attention_mask.bool(), complemented, input_ids)


def mirror_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) positions read by a reverse complement: each real token's mirror within its own
    row's real tokens, padding in place."""
    first, last = real_token_bounds(attention_mask)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), (first + last).unsqueeze(1) - positions, positions)


def reverse_complement_onehot(onehot: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The reverse complement of one-hot bases (B, L, 4) in A, C, G, T order, as
    :func:`reverse_complement_batch` does it to token ids: the base axis reversed (A<->T, C<->G),
    real positions mirrored; differentiable."""
    index = mirror_index(attention_mask).unsqueeze(-1).expand_as(onehot)
    return torch.gather(onehot, 1, index).flip(-1)
