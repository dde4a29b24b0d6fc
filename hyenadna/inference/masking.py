"""Exact results for padded batches: the model's ``attention_mask``.

HyenaDNA is causal and has no attention mask of its own: a real token never sees padding that
comes after it, so right-padded rows give exactly the states of the unpadded sequences, but
padding before a sequence (left padding, the released tokenizer's default) flows into every
later state through the convolutions and biases. Given the mask, the model moves each row's
real tokens to the start (:func:`to_right_padding`), runs, and moves the states back
(:func:`restore_positions`), so any padding gives the unpadded numbers; positions of padding get
zeros.
"""

from __future__ import annotations

import torch

from hyenadna.errors import HyenaDNAError


def to_right_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``input_ids`` with each row's real tokens moved to the start, and each row's shift (None
    when no row needs one). The mask must mark one contiguous run of real tokens per row."""
    if attention_mask.shape != input_ids.shape:
        raise HyenaDNAError(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
            f"got {tuple(attention_mask.shape)}"
        )
    mask = attention_mask.bool()
    length = mask.shape[1]
    start = mask.int().argmax(1)  # first real token (0 for a row of padding only)
    count = mask.sum(1)
    positions = torch.arange(length, device=mask.device)
    expected = (positions >= start[:, None]) & (positions < (start + count)[:, None])
    if not torch.equal(expected, mask):
        raise HyenaDNAError("attention_mask must mark one contiguous run of real tokens in each row")
    if not bool(start.any()):
        return input_ids, None
    index = (positions + start[:, None]) % length  # padding before the run wraps round to the end
    return input_ids.gather(1, index), start


def restore_positions(states: torch.Tensor, shift: torch.Tensor | None, attention_mask: torch.Tensor) -> torch.Tensor:
    """States (B, L, D) of right-aligned rows put back at the input's positions, zeros at padding."""
    if shift is not None:
        positions = torch.arange(states.shape[1], device=states.device)
        index = (positions - shift[:, None]) % states.shape[1]
        states = states.gather(1, index[..., None].expand(-1, -1, states.shape[-1]))
    return states.masked_fill(~attention_mask.bool()[..., None], 0)
