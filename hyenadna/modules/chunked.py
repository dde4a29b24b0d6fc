"""Grad-free inference in bounded memory, for inputs up to a million bases and beyond.

The plain forward pass keeps each block's intermediates at full length: the (L, 3d)
in-projection, the (L, 4d) MLP hidden layer, and complex spectra of about 2L points for every
channel. At 1M bases with d_model 256 that is over 20 GB, and on a CPU the large temporaries
also cost time: every fresh buffer above the allocator's reuse threshold is page-faulted in
anew. Here a block holds three full (B, L, d) buffers and only chunk-sized temporaries:

* ``residual``: the residual stream (float32 with ``residual_in_fp32``);
* ``hidden``: the block's input, then the mixer's output gate, then the block's output;
* ``value``: the long convolution's operand, convolved in place.

1. Chunks of positions: ``residual += hidden``; LayerNorm; in-projection; short convolution,
   carrying the last K-1 projected positions into the next chunk. The output gate goes to
   ``hidden``, the gated value to ``value`` (the gates of further steps, for order > 2, to
   buffers of their own).
2. Channel groups: the causal long convolution of ``value``, in place
   (:meth:`HyenaOperator.long_conv_`).
3. Chunks of positions: ``residual += out_proj(value * gate)``; LayerNorm; MLP into ``hidden``
   (float32 GELU through a sigmoid, hyenadna.ops.gelu).

Every position goes through the same operations as in the plain path, so the two agree to
float rounding (tests/test_chunked.py). :meth:`hyenadna.HyenaDNA.hidden_states` takes this path
when gradients are off, the model is in eval mode and the input is longer than
``config.inference_chunk``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from hyenadna.ops.fftconv import workspace_buffer
from hyenadna.ops.gelu import gelu_tanh_

if TYPE_CHECKING:
    from hyenadna.model import HyenaDNA


def spans(length: int, chunk: int) -> list[slice]:
    """Consecutive position slices of at most ``chunk`` covering ``range(length)``."""
    return [slice(start, min(start + chunk, length)) for start in range(0, length, chunk)]


def _mixer_and_mlp(
    block, hidden: torch.Tensor, residual: torch.Tensor, chunks: list[slice], first: bool, buffers: dict
) -> None:
    """One block in place: ``hidden`` becomes the block's output, ``residual`` its stream.
    ``buffers`` keeps the value and gate buffers from block to block (fresh large buffers
    cost page faults)."""
    mixer = block.mixer
    value: torch.Tensor | None = None
    middle: list[torch.Tensor] = []  # gates g_1 .. g_{order-2}, used between long convolutions
    previous = None
    for cols in chunks:
        stream = _add_to_stream(residual, hidden[:, cols], cols, first)
        normed = block.norm1(stream.to(block.norm1.weight.dtype))
        (gate, *gates, v), previous = mixer.project(normed, previous)
        if value is None:
            value = workspace_buffer(buffers, "value", hidden.shape, v.dtype, v.device)
            middle = [
                workspace_buffer(buffers, f"gate{i}", hidden.shape, g.dtype, g.device) for i, g in enumerate(gates[:-1])
            ]
        torch.mul(v, gates[-1], out=value[:, cols])
        for buffer, g in zip(middle, gates[:-1]):
            buffer[:, cols] = g
        hidden[:, cols] = gate
    for step in range(mixer.order - 1):
        if step:
            value.mul_(middle[-step])
        mixer.long_conv_(value, step, buffers.setdefault("fft", {}))
    for cols in chunks:
        stream = _add_to_stream(residual, mixer.out_proj(value[:, cols] * hidden[:, cols]), cols, False)
        normed = block.norm2(stream.to(block.norm2.weight.dtype))
        inner = block.mlp.fc1(normed)
        inner = gelu_tanh_(inner) if inner.dtype == torch.float32 else F.gelu(inner, approximate="tanh")
        hidden[:, cols] = block.mlp.fc2(inner)


def _add_to_stream(residual: torch.Tensor, update: torch.Tensor, cols: slice, first: bool) -> torch.Tensor:
    """``residual[cols] += update`` (or ``= update`` for the first block), returning the sum
    before it is rounded to the stream's dtype: the plain path normalises that sum."""
    total = update if first else residual[:, cols] + update
    residual[:, cols] = total
    return total


@torch.no_grad()
def chunked_hidden_states(model: HyenaDNA, input_ids: torch.Tensor, index: int, chunk: int) -> torch.Tensor:
    """Hidden states of layer ``index`` (0 .. n_layer, as in ``all_hidden_states``), chunked."""
    config = model.config
    hidden = model.token_embedding(input_ids)
    if index == 0:
        return hidden
    chunks = spans(input_ids.shape[1], chunk)
    residual = torch.empty(hidden.shape, dtype=torch.float32 if config.residual_in_fp32 else hidden.dtype,
                           device=hidden.device)  # fmt: skip
    buffers: dict = {}
    for i, block in enumerate(model.blocks[:index]):
        _mixer_and_mlp(block, hidden, residual, chunks, i == 0, buffers)
    buffers.clear()
    norm = model.final_norm if index == config.n_layer else None
    out = None
    for cols in chunks:  # the stream after block ``index``, normalised after the last block
        state = residual[:, cols] + hidden[:, cols]
        if norm is not None:
            state = norm(state.to(norm.weight.dtype))
        if out is None:
            out = residual if state.dtype == residual.dtype else residual.new_empty(residual.shape, dtype=state.dtype)
        out[:, cols] = state
    return out
