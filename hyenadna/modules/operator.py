"""The Hyena operator: data-controlled gates around implicit long convolutions.

For an input x (B, L, d) and recurrence order N:

1. project x to (N + 1) * d channels and run a causal depthwise short convolution over them;
2. split the channels into N gates g_0 .. g_{N-1} and a value v;
3. for each step o = 0 .. N-2: v <- h_o * (g_{N-1-o} ⊙ v) + D_o ⊙ (g_{N-1-o} ⊙ v), a causal
   long convolution with the implicit filter h_o plus a skip term;
4. gate with g_0 and project back to d channels.

Every step is causal, so the output at position t depends only on inputs at positions <= t.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from hyenadna.config import HyenaConfig
from hyenadna.errors import HyenaDNAError
from hyenadna.modules.chunked import spans
from hyenadna.modules.filter import ImplicitFilter
from hyenadna.ops.fftconv import (
    fftconv,
    fftconv_,
    filter_spectrum,
    gated_fftconv,
    next_fast_fft_size,
    triton_supported,
)
from hyenadna.ops.hyena_mixer import hand_written_backward_applies, hyena_mixer, rows_product
from hyenadna.ops.short_conv import short_conv


class HyenaOperator(nn.Module):
    """Sequence mixer of a HyenaDNA block, (B, L, d_model) -> (B, L, d_model)."""

    conv_group_bytes = 16 * 2**20  # float32 rows per channel group in chunked inference

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
        self.filter = ImplicitFilter(
            config.filter_channels,
            config.l_max,
            emb_dim=config.emb_dim,
            filter_order=config.filter_order,
            num_inner_mlps=config.num_inner_mlps,
            sin_freq=config.sin_freq,
            modulate=config.modulate,
            modulation_shift=config.modulation_shift,
            fast_decay_pct=config.fast_decay_pct,
            slow_decay_pct=config.slow_decay_pct,
            decay_target=config.decay_target,
            learn_pos_emb=config.learn_pos_emb,
            store_pos_emb=config.store_pos_emb,
        )
        # the D skip term, one value per filter channel (``bias`` of the released filter)
        self.d_skip = nn.Parameter(torch.randn(config.filter_channels))
        self.out_proj = nn.Linear(d, d)
        # inference cache of filters and their spectra (see _filters_for), this layer's share
        self.filter_cache_bytes = config.filter_cache_mb * 2**20 // config.n_layer
        self._spectra: OrderedDict = OrderedDict()

    def long_filters(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Filters (order-1, d, L) and skip terms (order-1, d) for one forward pass.

        Filter channel c belongs to model channel c // (order-1) and recurrence step
        c % (order-1), the layout of the released weights.
        """
        steps = self.order - 1
        k = self.filter.channels(self.filter.features(length), length, channels_first=True)  # (d * steps, L)
        k = k.unflatten(0, (self.d_model, steps)).transpose(0, 1)  # rows stay contiguous
        d_skip = self.d_skip.reshape(self.d_model, steps).t()
        return k, d_skip

    def _filters_for(
        self, length: int, spectrum_only: bool = False, workspace: dict | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """Filters (order-1, d, L), skip terms and, when they cannot change, the filters'
        spectra (order-1, d, F), cached.

        Without gradients to the filter (inference, or a frozen filter), the implicit filter and
        its FFT are the same on every call of the same length: they are computed once and kept,
        the most recently used lengths first, within ``filter_cache_bytes`` (this layer's share
        of ``HyenaConfig.filter_cache_mb``). Entries are keyed by the parameters' identity,
        storage and version counters, so an optimiser step, ``load_state_dict`` or a move to
        another device invalidates them. ``spectrum_only``: the caller needs the spectra alone
        (the chunked path), so the filters are neither returned nor kept, and the spectra are
        computed a channel group at a time, reusing ``workspace`` (see :func:`fftconv_`).
        """
        params = [*self.filter.parameters(), self.d_skip]
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            k, d_skip = self.long_filters(length)
            return k, d_skip, None
        version = tuple((id(t), t.data_ptr(), t._version) for t in [*params, *self.filter.buffers()])
        key = (length, self.d_skip.device, self.d_skip.dtype, torch.is_autocast_enabled(self.d_skip.device.type))
        cached = self._spectra.get(key)
        if cached is not None and cached[0] == version and (spectrum_only or cached[1] is not None):
            self._spectra.move_to_end(key)
            return cached[1:]
        with torch.no_grad():
            if spectrum_only:
                k, d_skip = None, self.d_skip.reshape(self.d_model, self.order - 1).t()
                k_f = self._spectra_by_group(length, workspace)
            else:
                k, d_skip = self.long_filters(length)
                k_f = None
                if self.fftconv_impl != "ref":
                    k_f = filter_spectrum(k.flatten(0, 1), length).unflatten(0, k.shape[:2])
        self._remember(key, (version, k, d_skip, k_f))
        return k, d_skip, k_f

    def _group_size(self, length: int, batch: int) -> int:
        """Channels convolved at a time: whole multiples of 16 (batched FFTs of fewer rows run
        slower per point) of about ``conv_group_bytes`` of float32 rows in all."""
        n = next_fast_fft_size(2 * length - 1)
        return min(self.d_model * (self.order - 1), max(16, self.conv_group_bytes // (4 * batch * n) // 16 * 16))

    def _spectra_by_group(self, length: int, workspace: dict | None = None) -> torch.Tensor:
        """The spectra (order-1, d, F) of every filter, computed a channel group at a time
        (:meth:`_group_spectra`) into the one tensor that is kept: the temporaries stay the
        size of a group, and ``workspace`` (see :func:`fftconv_`) reuses their padded rows."""
        steps = self.order - 1
        channels = self.d_model * steps
        features = self.filter.features(length)
        index = torch.arange(channels, device=features.device)
        out = None
        for rows, k_f in self._group_spectra(features, length, index, workspace):
            if out is None:
                out = k_f.new_empty(channels, k_f.shape[-1])
            out[rows] = k_f
        return out.unflatten(0, (self.d_model, steps)).transpose(0, 1)  # filter channel c = d * steps + step

    def _group_spectra(
        self, features: torch.Tensor, length: int, index: torch.Tensor, workspace: dict | None, batch: int = 1
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """``(rows, spectra)`` of the filter channels ``index``, a group of rows at a time
        (:meth:`_group_size`); ``rows`` slices ``index``."""
        for rows in spans(len(index), self._group_size(length, batch)):
            k = self.filter.channels(features, length, index[rows], channels_first=True)
            yield rows, filter_spectrum(k, length, workspace=workspace)

    def _remember(self, key: tuple, entry: tuple) -> None:
        """Keep ``entry`` in the cache, dropping the least recently used lengths to make room;
        an entry larger than the whole share is not kept."""
        self._spectra.pop(key, None)
        size = _nbytes(entry)
        if size > self.filter_cache_bytes:
            return
        while self._spectra and size + sum(_nbytes(held) for held in self._spectra.values()) > self.filter_cache_bytes:
            self._spectra.popitem(last=False)
        self._spectra[key] = entry

    def spectrum_fits_cache(self, length: int, dtype: torch.dtype) -> bool:
        """Whether a spectra-only entry at ``length`` (the spectra of every recurrence step and
        the skip terms, as :func:`_nbytes` counts them) fits this layer's cache, for
        activations of ``dtype``: float64 ones take complex128 spectra."""
        n = next_fast_fft_size(2 * length - 1)
        itemsize = 16 if dtype == torch.float64 else 8
        channels = (self.order - 1) * self.d_model
        size = channels * ((n // 2 + 1) * itemsize + self.d_skip.element_size())
        return size <= self.filter_cache_bytes

    def forward(self, x: torch.Tensor, recompute: bool = False) -> torch.Tensor:
        """(B, L, d_model) -> (B, L, d_model). ``recompute``: activation checkpointing, keep
        the input only and run the forward again in the backward pass."""
        length = x.shape[-2]
        if length > self.l_max:
            raise HyenaDNAError(f"input of length {length} is longer than the model's l_max {self.l_max}")
        if not torch.is_grad_enabled():
            k, d_skip, k_f = self._filters_for(length)
            if triton_supported(x.transpose(-1, -2), self.fftconv_impl):
                return self._forward_channels_first(x, k, d_skip)
            return self._forward_channels_last(x, k, d_skip, k_f)
        if self._fused_applies(x):
            if recompute:  # the filter MLP's activations are as large as the operator's own
                k, d_skip = checkpoint(self.long_filters, length, use_reentrant=False)
            else:
                k, d_skip, _ = self._filters_for(length)
            pairs = [(layer.weight, layer.bias) for layer in (self.in_proj, self.short_conv, self.out_proj)]
            skip = d_skip.to(x.dtype) if self.use_skip else None
            return hyena_mixer(x, pairs[0], pairs[1], k.to(x.dtype), skip, pairs[2], self.order, recompute)
        if recompute:
            return checkpoint(self._forward_autograd, x, use_reentrant=False)
        return self._forward_autograd(x)

    def _fused_applies(self, x: torch.Tensor) -> bool:
        """Training in float32/float64 without autocast takes :func:`hyena_mixer`, the whole
        operator as one autograd function with a hand-written backward. Half precision,
        autocast, the Triton kernels and the ``ref`` implementation take plain autograd
        (:meth:`_forward_autograd`)."""
        return (
            self.fftconv_impl in ("auto", "torch")
            and hand_written_backward_applies(x, self.in_proj.weight)
            and not triton_supported(x.transpose(-1, -2), self.fftconv_impl)
        )

    def _forward_autograd(self, x: torch.Tensor) -> torch.Tensor:
        k, d_skip, _ = self._filters_for(x.shape[-2])
        return self._forward_channels_first(x, k, d_skip)

    def _forward_channels_first(self, x: torch.Tensor, k: torch.Tensor, d_skip: torch.Tensor) -> torch.Tensor:
        """The (B, C, L) layout with plain autograd: half precision and autocast, the ``ref``
        implementation, and the Triton kernels, which take over the short convolution with the
        split (:mod:`hyenadna.ops.triton.short_conv`) and the last, gated, long convolution
        (:func:`gated_fftconv`)."""
        length = x.shape[-2]
        z = self.in_proj(x)
        if triton_supported(x.transpose(-1, -2), self.fftconv_impl):  # short conv, transpose, split: one kernel
            from hyenadna.ops.triton.short_conv import short_conv_split_triton

            *gates, v = short_conv_split_triton(z, self.short_conv.weight, self.short_conv.bias, self.d_model)
        else:
            u = F.conv1d(
                z.transpose(-1, -2),  # (B, (order+1) d, L)
                self.short_conv.weight,
                self.short_conv.bias,
                padding=self.short_conv.padding,
                groups=z.shape[-1],
            )[..., :length]
            *gates, v = u.split(self.d_model, dim=-2)
        last = self.order - 2
        for step, gate in enumerate(reversed(gates[2:])):
            v = fftconv(v * gate, k[step], d_skip[step] if self.use_skip else None, impl=self.fftconv_impl)
        skip = d_skip[last] if self.use_skip else None
        v = gated_fftconv(gates[0], gates[1], v, k[last], skip, impl=self.fftconv_impl)
        return self.out_proj(v.transpose(-1, -2))

    def _forward_channels_last(
        self, x: torch.Tensor, k: torch.Tensor, d_skip: torch.Tensor, k_f: torch.Tensor | None
    ) -> torch.Tensor:
        """Inference layout (B, L, C), the projections' own: no transposes around the short
        convolution (shifted multiply-adds) and one contiguous copy per long convolution."""
        u = short_conv(self.in_proj(x), self.short_conv.weight, self.short_conv.bias)  # (B, L, (order+1) d)
        *gates, v = u.split(self.d_model, dim=-1)
        for step, gate in enumerate(reversed(gates[1:])):
            v = fftconv(
                v * gate,
                k[step],
                d_skip[step] if self.use_skip else None,
                impl=self.fftconv_impl,
                k_f=None if k_f is None else k_f[step],
                channels_last=True,
            )
        return self.out_proj(v * gates[0])

    # ---- pieces of the chunked inference path (hyenadna.modules.chunked) ----

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
        # short_conv takes (B, n, C): transposed views of the channel-major rows
        u = short_conv(z.transpose(-1, -2), self.short_conv.weight, self.short_conv.bias, previous.transpose(-1, -2))
        keep, n = previous.shape[-1], z.shape[-1]
        following = z[..., n - keep :].clone() if n >= keep else torch.cat([previous[..., n:], z], dim=-1)
        return list(u.transpose(-1, -2).split(self.d_model, dim=-2)), following

    def long_conv_(self, value: torch.Tensor, step: int, workspace: dict | None = None) -> torch.Tensor:
        """Recurrence step ``step``'s long convolution of the whole value (B, d, L), in place.

        Channels go a group at a time (:meth:`_group_size`). The filters' spectra come from the
        layer's cache when the length's spectra fit it (:meth:`spectrum_fits_cache`: computed
        once and kept); otherwise each group's are computed in turn from the filter MLP's
        shared features. ``workspace`` keeps the padded rows from group to group (see
        :func:`fftconv_`).
        """
        batch, length = value.shape[0], value.shape[-1]
        steps = self.order - 1
        d_skip = self.d_skip.reshape(self.d_model, steps)[:, step] if self.use_skip else None
        workspace = {} if workspace is None else workspace
        if self.spectrum_fits_cache(length, value.dtype):
            k_f = self._filters_for(length, spectrum_only=True, workspace=workspace)[2][step]
            group = self._group_size(length, batch)
            spectra = ((cols, k_f[cols]) for cols in spans(self.d_model, group))
        else:
            index = torch.arange(self.d_model, device=value.device) * steps + step
            spectra = self._group_spectra(self.filter.features(length), length, index, workspace, batch)
        for cols, group_k_f in spectra:
            fftconv_(value[:, cols], group_k_f, None if d_skip is None else d_skip[cols], workspace)
        return value


def _nbytes(entry: tuple) -> int:
    """Bytes held by the tensors of a cache entry."""
    return sum(t.numel() * t.element_size() for t in entry[1:] if isinstance(t, torch.Tensor))
