"""Grad-free inference in bounded memory, for inputs up to a million bases and beyond.

The plain forward pass keeps each block's intermediates at full length: the (L, 3d)
in-projection, the (L, 4d) MLP hidden layer, and complex spectra of about 2L points for every
channel. At 1M bases with d_model 256 that is over 20 GB, and on a CPU the large temporaries
also cost time: every fresh buffer above the allocator's reuse threshold is page-faulted in
anew. Here a block holds three full buffers and only chunk-sized temporaries:

* ``residual`` (B, L, d): the residual stream (float32 with ``residual_in_fp32``);
* ``value`` (B, d, L): the long convolution's operand, convolved in place;
* ``gate`` (B, d, L): the mixer's output gate.

``value`` and ``gate`` are channel-major, the layout of the FFT's rows: the in-projection is
computed as ``W @ x^T`` straight into it and the out-projection reads it as a transposed
operand, so no activation is ever transposed by a copy (a transposing copy runs at about a
tenth of a plain copy's bandwidth on a CPU).

1. Chunks of positions: LayerNorm of the stream; in-projection; short convolution, carrying
   the last K-1 projected positions into the next chunk. The output gate goes to ``gate``,
   the gated value to ``value`` (the gates of further steps, for order > 2, to buffers of
   their own).
2. Channel groups: the causal long convolution of ``value``, in place
   (:meth:`HyenaOperator.long_conv_`).
3. Chunks of positions: ``residual += out_proj(value * gate)``; LayerNorm; MLP (float32 GELU
   through a sigmoid, hyenadna.ops.gelu), whose output is added to ``residual`` at once. The
   plain path keeps it apart and adds it at the start of the next block; the sum is the same,
   and nothing else reads it.

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
from hyenadna.ops.hyena_mixer import rows_product

if TYPE_CHECKING:
    from hyenadna.model import HyenaDNA


def spans(length: int, chunk: int) -> list[slice]:
    """Consecutive position slices of at most ``chunk`` covering ``range(length)``."""
    return [slice(start, min(start + chunk, length)) for start in range(0, length, chunk)]


def _mixer_and_mlp(block, residual: torch.Tensor, chunks: list[slice], buffers: dict) -> None:
    """One block in place on the residual stream (B, L, d). ``buffers`` keeps the channel-major
    value and gate buffers from block to block (fresh large buffers cost page faults)."""
    mixer = block.mixer
    batch, length, width = residual.shape
    value = gate = None
    middle: list[torch.Tensor] = []  # gates g_1 .. g_{order-2}, used between long convolutions
    previous = None
    for cols in chunks:
        normed = block.norm1(residual[:, cols].to(block.norm1.weight.dtype))
        (g0, *gates, v), previous = mixer.project(normed, previous)
        if value is None:
            shape = (batch, width, length)
            value = workspace_buffer(buffers, "value", shape, v.dtype, v.device)
            gate = workspace_buffer(buffers, "gate", shape, g0.dtype, g0.device)
            middle = [workspace_buffer(buffers, f"gate{i}", shape, g.dtype, g.device) for i, g in enumerate(gates[:-1])]
        torch.mul(v, gates[-1], out=value[..., cols])
        for buffer, g in zip(middle, gates[:-1]):
            buffer[..., cols] = g
        gate[..., cols] = g0
    for step in range(mixer.order - 1):
        if step:
            value.mul_(middle[-step])
        mixer.long_conv_(value, step, buffers.setdefault("fft", {}))
    for cols in chunks:
        gated = value[..., cols].mul_(gate[..., cols])  # (B, d, n), read by BLAS as a transposed operand
        mixed = gated.new_empty(batch, gated.shape[-1], width)
        rows_product(gated.transpose(-1, -2), mixer.out_proj.weight.t(), mixed, mixer.out_proj.bias)
        stream = _add_to_stream(residual, cols, mixed)
        inner = block.mlp.fc1(block.norm2(stream.to(block.norm2.weight.dtype)))
        inner = gelu_tanh_(inner) if inner.dtype == torch.float32 else F.gelu(inner, approximate="tanh")
        _add_to_stream(residual, cols, block.mlp.fc2(inner))


def _add_to_stream(residual: torch.Tensor, cols: slice, update: torch.Tensor) -> torch.Tensor:
    """``residual[cols] += update``, returning the sum. The stream is at least as wide as the
    activations (float32 with ``residual_in_fp32``, else their dtype), so the sum is stored
    unrounded, and adding the MLP's output at once equals adding it at the next block. (With
    float64 activations and ``residual_in_fp32`` the plain path rounds its stream to float32
    between layers; this path keeps it in float64.)"""
    return residual[:, cols].add_(update)


@torch.no_grad()
def chunked_hidden_states(model: HyenaDNA, input_ids: torch.Tensor, index: int, chunk: int) -> torch.Tensor:
    """Hidden states of layer ``index`` (0 .. n_layer, as in ``all_hidden_states``), chunked."""
    config = model.config
    hidden = model.token_embedding(input_ids)
    if index == 0:
        return hidden
    chunks = spans(input_ids.shape[1], chunk)
    residual = hidden  # the embedding's own buffer becomes the stream
    if config.residual_in_fp32:  # float64 activations keep a float64 stream (see _add_to_stream)
        residual = hidden.to(torch.promote_types(hidden.dtype, torch.float32))
    buffers: dict = {}
    for block in model.blocks[:index]:
        _mixer_and_mlp(block, residual, chunks, buffers)
    buffers.clear()
    if index < config.n_layer:
        return residual
    norm = model.final_norm
    out = None
    for cols in chunks:  # the stream after the last block, normalised
        state = norm(residual[:, cols].to(norm.weight.dtype))
        if out is None:
            out = residual if state.dtype == residual.dtype else residual.new_empty(residual.shape, dtype=state.dtype)
        out[:, cols] = state
    return out
