"""The Hyena operator: data-controlled gates around implicit long convolutions.

For an input x (B, L, d) and recurrence order N:

1. project x to (N + 1) * d channels and run a causal depthwise short convolution over them;
2. split the channels into N gates g_0 .. g_{N-1} and a value v;
3. for each step o = 0 .. N-2: v <- h_o * (g_{N-1-o} ⊙ v) + D_o ⊙ (g_{N-1-o} ⊙ v), a causal
   long convolution with the implicit filter h_o plus a skip term;
4. gate with g_0 and project back to d channels.

Every step is causal, so the output at position t depends only on inputs at positions <= t.
This module holds the parameters; the math lives in :mod:`hyenadna.ops`:
:func:`hyenadna.ops.reference.hyena_operator_ref` is the plain reference, and
:func:`hyenadna.ops.dispatch.choose_path` picks the fast path that runs.
"""

from __future__ import annotations

import torch
from torch import nn

from hyenadna.config import HyenaConfig
from hyenadna.errors import HyenaDNAError
from hyenadna.modules.filter_bank import FilterBank
from hyenadna.ops.dispatch import choose_path
from hyenadna.ops.fftconv import fftconv_
from hyenadna.ops.reference import OperatorWeights
from hyenadna.ops.rows import rows_product
from hyenadna.ops.short_conv import short_conv


class HyenaOperator(nn.Module):
    """Sequence mixer of a HyenaDNA block, (B, L, d_model) -> (B, L, d_model)."""

    def __init__(self, config: HyenaConfig) -> None:
        super().__init__()
        d, order = config.d_model, config.order
        width = d * (order + 1)
        self.d_model = d
        self.order = order
        self.l_max = config.l_max
        self.use_skip = config.filter_bias
        self.fftconv_impl = config.fftconv_impl
        self.in_proj = nn.Linear(d, width)
        self.short_conv = nn.Conv1d(
            width, width, config.short_filter_order, groups=width, padding=config.short_filter_order - 1
        )
        self.filter = FilterBank(config)
        # the D skip term, one value per filter channel (``bias`` of the released filter)
        self.d_skip = nn.Parameter(torch.randn(config.filter_channels))
        self.out_proj = nn.Linear(d, d)

    def skip_terms(self) -> torch.Tensor | None:
        """The skip terms (order-1, d) in the filters' layout, or ``None`` without them."""
        return self.d_skip.reshape(self.d_model, self.order - 1).t() if self.use_skip else None

    def weights(self, k: torch.Tensor) -> OperatorWeights:
        """The weights as every form of the operator in :mod:`hyenadna.ops` takes them, with the
        long filters ``k`` (order-1, d, L)."""
        pairs = [(layer.weight, layer.bias) for layer in (self.in_proj, self.short_conv, self.out_proj)]
        return OperatorWeights(pairs[0], pairs[1], k, self.skip_terms(), pairs[2], self.order)

    def forward(self, x: torch.Tensor, recompute: bool = False) -> torch.Tensor:
        """(B, L, d_model) -> (B, L, d_model). ``recompute``: activation checkpointing, keep
        the input only and run the forward again in the backward pass."""
        length = x.shape[-2]
        if length > self.l_max:
            raise HyenaDNAError(f"input of length {length} is longer than the model's l_max {self.l_max}")
        return choose_path(x, self.in_proj.weight, self.fftconv_impl).operator(x, self, recompute)

    # ---- the chunked inference path (Block.forward_chunked_) ----

    def project(self, x: torch.Tensor, previous: torch.Tensor | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """In-projection and short convolution of one chunk of a longer input (B, n, d), in the
        channel-major layout (B, channels, n) of the long convolution's rows: the product is
        computed as ``W @ x^T``, so the layout costs no transposing copy, and the short
        convolution's shifted multiply-adds run along contiguous rows.

        ``previous`` (B, (order+1) d, K-1) holds the projected positions just before the chunk
        (``None``: the first chunk, zeros before it). Returns the ``order + 1`` gate and value
        slices (B, d, n) and the ``previous`` of the next chunk.
        """
        weight, bias = self.in_proj.weight, self.in_proj.bias
        z = x.new_empty(x.shape[0], weight.shape[0], x.shape[1])  # (B, (order+1) d, n)
        rows_product(weight, x.transpose(-1, -2), z, None if bias is None else bias.unsqueeze(-1))
        if previous is None:
            previous = z.new_zeros(z.shape[0], z.shape[1], self.short_conv.weight.shape[-1] - 1)
        u = short_conv(z, self.short_conv.weight, self.short_conv.bias, previous, channels_last=False)
        keep, n = previous.shape[-1], z.shape[-1]
        following = z[..., n - keep :].clone() if n >= keep else torch.cat([previous[..., n:], z], dim=-1)
        return list(u.split(self.d_model, dim=-2)), following

    def long_conv_(self, value: torch.Tensor, step: int, workspace: dict) -> torch.Tensor:
        """Recurrence step ``step``'s long convolution of the whole value (B, d, L), in place,
        a channel group at a time with the spectra of :meth:`FilterBank.step_spectra`;
        ``workspace`` keeps the padded rows from group to group (see :func:`fftconv_`)."""
        batch, length = value.shape[0], value.shape[-1]
        skip = self.skip_terms()
        for cols, k_f in self.filter.step_spectra(length, step, batch, value.dtype, workspace):
            fftconv_(value[:, cols], k_f, None if skip is None else skip[step, cols], workspace)
        return value

    def project_out(self, gated: torch.Tensor) -> torch.Tensor:
        """Out-projection of channel-major rows (B, d, n) to (B, n, d), reading them as a
        transposed operand (no copy)."""
        out = gated.new_empty(gated.shape[0], gated.shape[-1], self.d_model)
        rows_product(gated.transpose(-1, -2), self.out_proj.weight.t(), out, self.out_proj.bias)
        return out
