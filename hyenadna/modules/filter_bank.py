"""The long filters of one Hyena operator, and the cache of their spectra.

:class:`FilterBank` is the operator's :class:`~hyenadna.modules.filter.ImplicitFilter` (the same
parameters and state-dict keys) plus what the operator needs from it at a given length: the
filters in the (order-1, d, L) layout of the recurrence steps, and, when they cannot change,
their spectra kept across calls. Without gradients to the filter (inference, or a frozen
backbone) the implicit filter and its FFT are the same on every call of the same length, so they
are computed once and kept, the most recently used lengths first, within this layer's share of
``HyenaConfig.filter_cache_mb``. Entries are keyed by the parameters' identity, storage and
version counters, so an optimiser step, ``load_state_dict`` or a move to another device
invalidates them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import torch

from hyenadna.config import HyenaConfig
from hyenadna.modules.filter import ImplicitFilter
from hyenadna.ops.fftconv import conv_fft_size, filter_spectrum
from hyenadna.ops.rows import spans

FILTER_FIELDS = (  # the HyenaConfig fields that are ImplicitFilter's keyword arguments, by the same names
    "emb_dim", "filter_order", "num_inner_mlps", "sin_freq", "modulate", "modulation_shift", "fast_decay_pct",
    "slow_decay_pct", "decay_target", "learn_pos_emb", "store_pos_emb",
)  # fmt: skip


class FilterBank(ImplicitFilter):
    """Filters (order-1, d, L) for any length up to ``l_max``, with a spectrum cache.

    Filter channel c belongs to model channel c // (order-1) and recurrence step c % (order-1),
    the layout of the released weights.
    """

    conv_group_bytes = 16 * 2**20  # float32 rows per channel group in chunked inference

    def __init__(self, config: HyenaConfig) -> None:
        super().__init__(
            config.filter_channels, config.l_max, **{name: getattr(config, name) for name in FILTER_FIELDS}
        )
        self.d_model = config.d_model
        self.steps = config.order - 1
        self.cache_bytes = config.filter_cache_mb * 2**20 // config.n_layer  # this layer's share
        self._spectra: OrderedDict = OrderedDict()

    def long_filters(self, length: int) -> torch.Tensor:
        """Filters (order-1, d, L), computed channels-first (no transposing copy)."""
        k = self.channels(self.features(length), length, channels_first=True)  # (d * steps, L)
        return k.unflatten(0, (self.d_model, self.steps)).transpose(0, 1)  # rows stay contiguous

    def filters_for(
        self, length: int, spectrum_only: bool = False, workspace: dict | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Filters (order-1, d, L) and, when they cannot change, their spectra (order-1, d, F),
        cached (module docstring); with gradients to the filter, fresh filters and no spectra.
        ``spectrum_only``: the caller needs the spectra alone (the chunked path), so the filters
        are neither returned nor kept, and the spectra are computed a channel group at a time,
        reusing ``workspace`` (see :func:`hyenadna.ops.fftconv.fftconv_`)."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return self.long_filters(length), None
        version = weights_version(self)
        device, dtype = self.freq.device, self.freq.dtype
        key = (length, device, dtype, torch.is_autocast_enabled(device.type))
        cached = self._spectra.get(key)
        if cached is not None and cached[0] == version and (spectrum_only or cached[1] is not None):
            self._spectra.move_to_end(key)
            return cached[1:]
        with torch.no_grad():
            if spectrum_only:
                k, k_f = None, self._spectra_by_group(length, workspace)
            else:
                k = self.long_filters(length)
                k_f = filter_spectrum(k.flatten(0, 1), length).unflatten(0, k.shape[:2])
        if version is not None:
            self._remember(key, (version, k, k_f))
        return k, k_f

    def group_size(self, length: int, batch: int) -> int:
        """Channels convolved at a time: whole multiples of 16 (batched FFTs of fewer rows run
        slower per point) of about ``conv_group_bytes`` of float32 rows in all."""
        n = conv_fft_size(length)
        channels = self.d_model * self.steps
        return min(channels, max(16, self.conv_group_bytes // (4 * batch * n) // 16 * 16))

    def step_spectra(
        self, length: int, step: int, batch: int, dtype: torch.dtype, workspace: dict
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """``(model channels, spectra)`` of recurrence step ``step``, a channel group at a time:
        from the cache when the length's spectra fit it (:meth:`spectrum_fits_cache`), otherwise
        computed group by group from the filter MLP's shared features."""
        group = self.group_size(length, batch)
        if self.spectrum_fits_cache(length, dtype):
            k_f = self.filters_for(length, spectrum_only=True, workspace=workspace)[1][step]
            yield from ((cols, k_f[cols]) for cols in spans(self.d_model, group))
            return
        index = torch.arange(self.d_model, device=self.freq.device) * self.steps + step
        yield from self._group_spectra(self.features(length), length, index, workspace, group)

    def _spectra_by_group(self, length: int, workspace: dict | None = None) -> torch.Tensor:
        """The spectra (order-1, d, F) of every filter, computed a channel group at a time into
        the one tensor that is kept: the temporaries stay the size of a group."""
        channels = self.d_model * self.steps
        features = self.features(length)
        index = torch.arange(channels, device=features.device)
        out = None
        for rows, k_f in self._group_spectra(features, length, index, workspace, self.group_size(length, 1)):
            if out is None:
                out = k_f.new_empty(channels, k_f.shape[-1])
            out[rows] = k_f
        return out.unflatten(0, (self.d_model, self.steps)).transpose(0, 1)  # filter channel c = d * steps + step

    def _group_spectra(
        self, features: torch.Tensor, length: int, index: torch.Tensor, workspace: dict | None, group: int
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """``(rows, spectra)`` of the filter channels ``index``, ``group`` rows at a time;
        ``rows`` slices ``index``."""
        for rows in spans(len(index), group):
            k = self.channels(features, length, index[rows], channels_first=True)
            yield rows, filter_spectrum(k, length, workspace=workspace)

    def _remember(self, key: tuple, entry: tuple) -> None:
        """Keep ``entry`` in the cache, dropping the least recently used lengths to make room;
        an entry larger than the whole share is not kept."""
        self._spectra.pop(key, None)
        size = _nbytes(entry)
        if size > self.cache_bytes:
            return
        while self._spectra and size + sum(_nbytes(held) for held in self._spectra.values()) > self.cache_bytes:
            self._spectra.popitem(last=False)
        self._spectra[key] = entry

    def held_tensors(self) -> list[torch.Tensor]:
        """The filters and spectra the cache holds now: a CUDA graph captured from a call that
        read them keeps them (a later eviction must not free memory the graph reads)."""
        return [t for entry in self._spectra.values() for t in entry[1:] if isinstance(t, torch.Tensor)]

    def spectrum_fits_cache(self, length: int, dtype: torch.dtype) -> bool:
        """Whether a spectra-only entry at ``length`` (as :func:`_nbytes` counts it) fits this
        layer's cache, for activations of ``dtype``: float64 ones take complex128 spectra."""
        n = conv_fft_size(length)
        itemsize = 16 if dtype == torch.float64 else 8
        return self.d_model * self.steps * (n // 2 + 1) * itemsize <= self.cache_bytes


def _nbytes(entry: tuple) -> int:
    """Bytes held by the tensors of a cache entry."""
    return sum(t.numel() * t.element_size() for t in entry[1:] if isinstance(t, torch.Tensor))


def weights_version(module: torch.nn.Module) -> tuple | None:
    """What changes whenever a parameter or buffer of ``module`` is replaced or written in place
    (identity, storage and autograd's version counter), so a cache keyed on it is never stale.
    None where a weight is an inference tensor (a model built under ``torch.inference_mode``),
    whose writes no counter tracks: nothing computed from such weights may be cached."""
    tensors = [*module.parameters(), *module.buffers()]
    if any(t.is_inference() for t in tensors):
        return None
    return tuple((id(t), t.data_ptr(), t._version) for t in tensors)
