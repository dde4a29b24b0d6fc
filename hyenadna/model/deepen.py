"""Grow a trained HyenaDNA model deeper without changing what it predicts.

A pretrained model whose validation loss has flattened has run out of capacity, not of data;
starting a deeper model from scratch would throw away every token it has read. Instead the
model's blocks are kept and new blocks are interleaved between them (as LLaMA Pro grows a
language model), each initialised as the identity: its two projections into the residual stream
(the mixer's ``out_proj`` and the MLP's ``fc2``) are zero, so the grown model gives the same
logits as the old one to the last bit, and training resumes from where it stood. (To the bit
where the residual stream keeps the weights' dtype, as in float32 training; a float64 model
whose stream stays float32, ``residual_in_fp32``, agrees to float32 rounding.) The new
blocks' other weights draw from the usual initialisation, so their gradients are not zero once
the projections have moved.
"""

from __future__ import annotations

import dataclasses

import torch

from hyenadna.errors import HyenaDNAError
from hyenadna.model.hyena_dna import HyenaDNA

__all__ = ["deepen", "kept_positions"]


def kept_positions(old_layers: int, new_layers: int) -> list[int]:
    """Where the old blocks sit in the grown stack: spread out, the first block first (it holds
    the embedding dropout), e.g. 2 -> 4 layers gives [0, 2] (old, new, old, new). Positive
    layer numbers move with them: old layer i is grown layer ``kept[i - 1] + 1``; -1, the
    final normalised output, is the same layer."""
    return [(j * new_layers) // old_layers for j in range(old_layers)]


def deepen(model: HyenaDNA, n_layer: int) -> HyenaDNA:
    """``model`` grown to ``n_layer`` blocks, the new ones identity blocks between the old
    (:func:`kept_positions`), in the same train / eval mode, dtype and device. New weights draw
    from torch's current random state: seed it for a reproducible run."""
    old_layers = model.config.n_layer
    if n_layer <= old_layers:
        raise HyenaDNAError(
            f"cannot deepen a model of {old_layers} blocks to n_layer={n_layer}: the new depth must be larger"
        )
    parameter = next(model.parameters())
    grown = HyenaDNA(dataclasses.replace(model.config, n_layer=n_layer)).to(parameter.device, parameter.dtype)
    grown.token_embedding.load_state_dict(model.token_embedding.state_dict())
    grown.final_norm.load_state_dict(model.final_norm.state_dict())
    kept = kept_positions(old_layers, n_layer)
    for old, position in enumerate(kept):
        grown.blocks[position].load_state_dict(model.blocks[old].state_dict())
    with torch.no_grad():
        for position, block in enumerate(grown.blocks):
            if position not in kept:
                for projection in (block.mixer.out_proj, block.mlp.fc2):
                    projection.weight.zero_()
                    projection.bias.zero_()
    return grown.train(model.training)
