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

Decoding (as mamba_ssm's modules: :meth:`HyenaOperator.allocate_inference_cache` and
:meth:`HyenaOperator.step` beside ``forward``) is exact and incremental. The operator has no
fixed-size recurrent state: its long filter spans the whole prefix, so the output at position t
is ``sum_{s<=t} k[t-s] w_s + D w_t`` over the gated inputs ``w`` of every earlier position. The
:class:`OperatorCache` keeps, per recurrence step, those inputs (B, d, T), and the last K-1
in-projected positions (the short convolution's window). ``forward`` with an empty cache runs
a prompt once through FFT convolutions (``O(T log T)``, the reference's arithmetic) and fills
it; each later position costs one position of the projections plus, per step, one dot product
of the filter with the kept inputs, ``O(t d)``: linear in the current length t, not an FFT over
the whole sequence per position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hyenadna.config import HyenaConfig
from hyenadna.errors import HyenaDNAError
from hyenadna.modules.filter_bank import FilterBank
from hyenadna.ops.dispatch import choose_path
from hyenadna.ops.fftconv import fftconv_
from hyenadna.ops.recurrence import gate_recurrence
from hyenadna.ops.reference import OperatorWeights, fftconv_ref, short_conv_ref
from hyenadna.ops.rows import rows_product
from hyenadna.ops.short_conv import short_conv


@dataclass
class OperatorCache:
    """What one Hyena operator keeps between decoded positions (module docstring)."""

    filters: torch.Tensor  # (order-1, d, T) long filters; position s's tap does not depend on T
    taps: torch.Tensor  # the same reversed in time: k[t], .., k[0] end at index T-1
    skip: torch.Tensor | None  # (order-1, d) skip terms, or None
    inputs: torch.Tensor  # (order-1, B, d, T) gated inputs of each step's long convolution
    window: torch.Tensor  # (B, (order+1) d, K-1) the last K-1 in-projected positions
    length: int = 0  # positions held so far

    @property
    def max_length(self) -> int:
        """The positions it has room for."""
        return self.inputs.shape[-1]


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

    def forward(self, x: torch.Tensor, recompute: bool = False, cache: OperatorCache | None = None) -> torch.Tensor:
        """(B, L, d_model) -> (B, L, d_model). ``recompute``: activation checkpointing, keep
        the input only and run the forward again in the backward pass. ``cache``
        (:meth:`allocate_inference_cache`): decoding, the prompt into an empty cache, then
        one position at a time (:meth:`step`)."""
        if cache is not None:
            return self.step(x, cache) if cache.length else self._prefill(x, cache)
        length = x.shape[-2]
        if length > self.l_max:
            raise HyenaDNAError(f"input of length {length} is longer than the model's l_max {self.l_max}")
        return choose_path(x, self.in_proj.weight, self.fftconv_impl).operator(x, self, recompute)

    # ---- decoding (module docstring) ----

    @torch.no_grad()
    def allocate_inference_cache(self, batch: int, max_length: int, dtype: torch.dtype | None = None) -> OperatorCache:
        """An empty cache for decoding ``batch`` rows of up to ``max_length`` positions, in
        ``dtype`` (default: the weights'); the filters are computed once, at that length."""
        weight = self.in_proj.weight
        dtype = weight.dtype if dtype is None else dtype
        filters = self.filter.long_filters(max_length).to(dtype)
        skip = self.skip_terms()
        inputs = weight.new_zeros(self.order - 1, batch, self.d_model, max_length, dtype=dtype)
        window = weight.new_zeros(batch, weight.shape[0], self.short_conv.weight.shape[-1] - 1, dtype=dtype)
        return OperatorCache(filters, filters.flip(-1), None if skip is None else skip.to(dtype), inputs, window)

    def _prefill(self, x: torch.Tensor, cache: OperatorCache) -> torch.Tensor:
        """The operator over a whole prompt (B, L, d) as the reference computes it, its state
        kept in the empty ``cache``."""
        length = x.shape[1]
        if length > cache.max_length:
            raise HyenaDNAError(f"a prompt of {length:,} positions does not fit a cache of {cache.max_length:,}")
        z = F.linear(x, self.in_proj.weight, self.in_proj.bias)  # (B, L, C)
        u = short_conv_ref(z, self.short_conv.weight, self.short_conv.bias).transpose(1, 2)
        keep = cache.window.shape[-1]
        if keep:
            tail = z.transpose(1, 2)[..., max(0, length - keep) :]
            cache.window = torch.cat([cache.window, tail], dim=-1)[..., -keep:]
        g0, *gates, v = u.split(self.d_model, dim=1)

        def convolve(o: int, gate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
            w = gate * value
            cache.inputs[o, ..., :length] = w
            return fftconv_ref(w, cache.filters[o, :, :length], None if cache.skip is None else cache.skip[o])

        v = gate_recurrence(v, gates, convolve)
        cache.length = length
        return F.linear((g0 * v).transpose(1, 2), self.out_proj.weight, self.out_proj.bias)

    def step(self, x: torch.Tensor, cache: OperatorCache) -> torch.Tensor:
        """The operator at the next position alone, x (B, 1, d) -> (B, 1, d), from the state
        ``cache`` holds (and advances)."""
        t = cache.length
        if x.shape[-2] != 1 or t >= cache.max_length:
            raise HyenaDNAError(f"step takes one position into a cache with room; got {x.shape[-2]} at {t}"
                                f" of {cache.max_length}")  # fmt: skip
        z = F.linear(x[:, 0], self.in_proj.weight, self.in_proj.bias)  # (B, C)
        window = torch.cat([cache.window, z.unsqueeze(-1)], dim=-1)  # oldest .. newest, K positions
        u = (window * self.short_conv.weight[:, 0]).sum(-1)
        if self.short_conv.bias is not None:
            u = u + self.short_conv.bias
        cache.window = window[..., 1:]
        g0, *gates, v = u.split(self.d_model, dim=1)
        total = cache.max_length

        def convolve(o: int, gate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
            w = gate * value
            cache.inputs[o, ..., t] = w
            taps = cache.taps[o, :, total - 1 - t :]  # k[t], k[t-1], .., k[0] against w_0 .. w_t
            out = torch.linalg.vecdot(cache.inputs[o, ..., : t + 1], taps)
            return out if cache.skip is None else out + cache.skip[o] * w

        v = gate_recurrence(v, gates, convolve)
        cache.length = t + 1
        return F.linear((g0 * v).unsqueeze(1), self.out_proj.weight, self.out_proj.bias)

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
