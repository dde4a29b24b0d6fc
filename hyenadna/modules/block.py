"""The residual block of HyenaDNA: pre-norm Hyena mixer and MLP around a float32 stream.

The block follows the reference's fused layout, ``dropout -> add -> LayerNorm -> mixer ->
dropout -> add -> LayerNorm -> MLP``, and returns both the MLP output and the residual
stream; the next block (or the final norm) adds them. Keeping the residual stream in float32
keeps many layers of small updates from rounding away under bf16.

The block is the one place that runs norm -> mixer -> norm -> MLP: whole or one decoded position
at a time (:meth:`Block.forward`, with the operator's inference cache) or, for grad-free
inference over long inputs, chunk by chunk in place (:meth:`Block.forward_chunked_`);
:func:`add_norm` is the step before each sublayer and before the model's final norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hyenadna.config import HyenaConfig
from hyenadna.modules.operator import HyenaOperator, OperatorCache
from hyenadna.ops.dispatch import choose_path
from hyenadna.ops.gelu import gelu_tanh_
from hyenadna.ops.recurrence import gate_recurrence
from hyenadna.ops.rows import workspace_buffer


def add_norm(
    hidden: torch.Tensor | None,
    residual: torch.Tensor | None,
    dropout: nn.Module,
    norm: nn.LayerNorm,
    residual_in_fp32: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A sublayer's output ``hidden``, through ``dropout``, added to the residual stream, and
    the stream normalised in the norm's dtype: (normalised, stream). ``residual`` None: the
    stream starts here; ``hidden`` None: the stream holds it already (the chunked path adds in
    place). ``residual_in_fp32``: the stream comes back in float32."""
    if hidden is not None:
        dropped = dropout(hidden)
        residual = dropped if residual is None else dropped + residual
    normed = norm(residual.to(norm.weight.dtype))
    if residual_in_fp32:
        residual = residual.to(torch.float32)
    return normed, residual


class Mlp(nn.Module):
    """Position-wise feed-forward layer with tanh-approximated GELU. In float32/float64
    training without autocast (or float32 under the CPU's bfloat16 autocast) it runs as
    :func:`hyenadna.ops.mlp.gelu_mlp`, which saves less for the backward pass and checkpoints
    without a wasted second ``fc2`` (:func:`hyenadna.ops.dispatch.choose_path` decides)."""

    def __init__(self, d_model: int, d_inner: int, impl: str = "auto") -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)
        self.impl = impl

    def forward(self, x: torch.Tensor, recompute: bool = False) -> torch.Tensor:
        return choose_path(x, self.fc1.weight, self.impl).mlp(x, self, recompute)

    def forward_inference_(self, x: torch.Tensor) -> torch.Tensor:
        """Grad-free, the hidden layer's GELU in place (float32: the sigmoid form of
        :func:`hyenadna.ops.gelu.gelu_tanh_`)."""
        inner = self.fc1(x)
        inner = gelu_tanh_(inner) if inner.dtype == torch.float32 else F.gelu(inner, approximate="tanh")
        return self.fc2(inner)


class Block(nn.Module):
    """One HyenaDNA layer; ``forward(hidden, residual) -> (hidden, residual)``."""

    def __init__(self, config: HyenaConfig, layer_idx: int) -> None:
        super().__init__()
        self.residual_in_fp32 = config.residual_in_fp32
        self.checkpoint_mixer = config.checkpoint_mixer
        self.checkpoint_mlp = config.checkpoint_mlp
        # the first block's input dropout is the embedding dropout
        self.dropout1 = nn.Dropout(config.embed_dropout if layer_idx == 0 else config.resid_dropout)
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mixer = HyenaOperator(config)
        self.dropout2 = nn.Dropout(config.resid_dropout)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mlp = Mlp(config.d_model, config.d_inner, config.fftconv_impl)

    def forward(
        self, hidden: torch.Tensor, residual: torch.Tensor | None = None, cache: OperatorCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden, residual) -> (MLP output, residual stream). ``cache``
        (:meth:`allocate_inference_cache`): decoding, a prompt into an empty cache, then one
        position at a time (:meth:`HyenaOperator.forward`)."""
        fp32 = self.residual_in_fp32
        normed, residual = add_norm(hidden, residual, self.dropout1, self.norm1, fp32)
        hidden = self.mixer(normed, recompute=self.checkpoint_mixer and self.training, cache=cache)
        normed, residual = add_norm(hidden, residual, self.dropout2, self.norm2, fp32)
        return self.mlp(normed, recompute=self.checkpoint_mlp and self.training), residual

    def allocate_inference_cache(self, batch: int, max_length: int, dtype: torch.dtype | None = None) -> OperatorCache:
        """The state decoding keeps for this block: its operator's (the norms and the MLP are
        position-wise)."""
        return self.mixer.allocate_inference_cache(batch, max_length, dtype)

    @torch.no_grad()
    def forward_chunked_(self, residual: torch.Tensor, chunks: list[slice], buffers: dict) -> None:
        """The block on the whole residual stream (B, L, d) in place, grad-free and in eval
        mode, in bounded memory: the way long inputs (up to a million bases and beyond) run.

        The plain forward keeps each block's intermediates at full length: the (L, 3d)
        in-projection, the (L, 4d) MLP hidden layer, and complex spectra of about 2L points for
        every channel (over 20 GB at 1M bases with d_model 256); on a CPU every fresh buffer
        above the allocator's reuse threshold is also page-faulted in anew. Here the block holds
        three full buffers, kept in ``buffers`` from block to block, and chunk-sized temporaries:
        the stream itself, ``value`` (B, d, L), the long convolution's operand, convolved in
        place, and ``gate`` (B, d, L), the output gate. Both are channel-major, the FFT's rows:
        the in-projection is computed as ``W @ x^T`` straight into them and the out-projection
        reads them as a transposed operand, so no activation is transposed by a copy.

        1. Chunks of positions: norm1; in-projection and short convolution
           (:meth:`HyenaOperator.project`, carrying the last K-1 projected positions into the
           next chunk); the output gate to ``gate``, the gated value to ``value`` (the gates of
           further steps, for order > 2, to buffers of their own).
        2. Channel groups: each long convolution of ``value`` in place
           (:meth:`HyenaOperator.long_conv_`).
        3. Chunks of positions: the stream += out-projection of ``value * gate``; norm2; MLP,
           whose output is added to the stream at once. The plain path keeps it apart and adds
           it at the start of the next block; the sum is the same, and nothing else reads it.

        The stream is at least as wide as the activations (float32 with ``residual_in_fp32``,
        else their dtype), so sums are stored unrounded. (With float64 activations and
        ``residual_in_fp32`` the plain path rounds its stream to float32 between layers; this
        one keeps float64.) Every position goes through the same operations as in
        :meth:`forward`, so the two agree to float rounding.
        """
        mixer = self.mixer
        batch, length, width = residual.shape
        value = gate = None
        middle: list[torch.Tensor] = []  # gates g_1 .. g_{order-2}, used between long convolutions
        previous = None
        for cols in chunks:
            normed, _ = add_norm(None, residual[:, cols], self.dropout1, self.norm1)
            (g0, *gates, v), previous = mixer.project(normed, previous)
            if value is None:
                shape = (batch, width, length)
                value = workspace_buffer(buffers, "value", shape, v.dtype, v.device)
                gate = workspace_buffer(buffers, "gate", shape, g0.dtype, g0.device)
                middle = [
                    workspace_buffer(buffers, f"gate{i}", shape, g.dtype, g.device) for i, g in enumerate(gates[:-1])
                ]
            torch.mul(v, gates[-1], out=value[..., cols])
            for buffer, g in zip(middle, gates[:-1]):
                buffer[..., cols] = g
            gate[..., cols] = g0
        workspace = buffers.setdefault("fft", {})
        # the first step's gate is applied above, chunk by chunk (None); each later one in place
        gate_recurrence(value, [*middle, None],
                        lambda o, g, v: mixer.long_conv_(v if g is None else v.mul_(g), o, workspace))  # fmt: skip
        for cols in chunks:
            mixed = mixer.project_out(value[..., cols].mul_(gate[..., cols]))
            normed, _ = add_norm(None, residual[:, cols].add_(mixed), self.dropout2, self.norm2)
            residual[:, cols].add_(self.mlp.forward_inference_(normed))
