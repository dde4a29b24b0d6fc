"""The implicit long filter of a Hyena operator.

A Hyena filter is as long as the input, yet it is not stored tap by tap: a small MLP with Sin
activations maps a positional embedding of each time step to one value per channel, and an
exponential decay window shapes the result. So the parameter count is independent of the
sequence length, and the same weights give a filter for any length up to ``l_max``.
"""

from __future__ import annotations

import contextlib
import itertools
import math

import torch
from torch import nn


def positional_embedding(l_max: int, emb_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HyenaDNA's filter input: (l_max, emb_dim) features and (l_max, 1) normalised time.

    The features are normalised time t in [0, 1] followed by the real and imaginary parts of
    ``exp(-i f w)`` for ``(emb_dim - 1) / 2`` frequency bands f, with ``w = 2 pi n / l_max``.
    They are computed for ``l_max`` and sliced for shorter inputs, so a position's features do
    not depend on the input length (as in the released models).
    """
    bands = (emb_dim - 1) // 2
    t = torch.linspace(0, 1, l_max)[:, None]
    w = 2 * math.pi * torch.linspace(0, l_max - 1, l_max)[:, None] / l_max
    f = torch.linspace(1e-4, bands - 1, bands)[None, :]
    z = torch.exp(-1j * f * w)
    return torch.cat([t, z.real, z.imag], dim=-1), t


def decay_rates(channels: int, fast_decay_pct: float, slow_decay_pct: float, target: float) -> torch.Tensor:
    """Per-channel decay rates, spread linearly so that channels see different horizons.

    Channel rates are chosen so the window falls to ``target`` after between
    ``fast_decay_pct`` and ``slow_decay_pct`` of the normalised time axis.
    """
    max_decay = math.log(target) / fast_decay_pct
    min_decay = math.log(target) / slow_decay_pct
    return torch.linspace(min_decay, max_decay, channels)


def cpu_autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """A context with the CPU's autocast off, for filters on the CPU (else a no-op). The filter
    MLP's (L, filter_order) activations are small beside the operator's: under CPU autocast,
    casting them cost more than its bfloat16 products saved, and bfloat16 filters would round
    every tap of the long convolution the FFT then computes in float32. (CUDA autocast keeps the
    filter MLP in bfloat16, as the GPU timings of :data:`hyenadna.ops.dispatch.CUDA_ROUTES` ran.)"""
    return torch.autocast("cpu", enabled=False) if device.type == "cpu" else contextlib.nullcontext()


class ImplicitFilter(nn.Module):
    """Produces the (L, channels) long-convolution filter for a given length L."""

    def __init__(
        self,
        channels: int,
        l_max: int,
        emb_dim: int = 5,
        filter_order: int = 64,
        num_inner_mlps: int = 2,
        sin_freq: float = 10.0,
        modulate: bool = True,
        modulation_shift: float = 0.0,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        decay_target: float = 1e-2,
        learn_pos_emb: bool = False,
        store_pos_emb: bool = False,
    ) -> None:
        super().__init__()
        self.l_max = l_max
        self.modulate = modulate
        self.modulation_shift = modulation_shift
        z, t = positional_embedding(l_max, emb_dim)
        if learn_pos_emb:
            self.z = nn.Parameter(z)
        else:  # a pure function of l_max: stored with the weights only when asked
            self.register_buffer("z", z, persistent=store_pos_emb)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer(
            "deltas", decay_rates(channels, fast_decay_pct, slow_decay_pct, decay_target), persistent=False
        )
        widths = [emb_dim] + [filter_order] * (num_inner_mlps + 1)
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.mlp.append(nn.Linear(filter_order, channels, bias=False))
        # one trainable frequency vector shared by every Sin activation of the MLP
        self.freq = nn.Parameter(torch.full((1, filter_order), float(sin_freq)))

    def forward(self, length: int) -> torch.Tensor:
        return self.channels(self.features(length), length)

    def features(self, length: int) -> torch.Tensor:
        """The MLP's last hidden layer (L, filter_order), shared by every channel; float32
        under the CPU's autocast (:func:`cpu_autocast_off`)."""
        with cpu_autocast_off(self.freq.device):
            h = self.z[:length]
            for linear in self.mlp[:-1]:
                h = torch.sin(self.freq * linear(h))
        return h

    def channels(
        self,
        features: torch.Tensor,
        length: int,
        index: torch.Tensor | slice | None = None,
        channels_first: bool = False,
    ) -> torch.Tensor:
        """Filters (L, channels) of the channels ``index`` (default: all) from :meth:`features`;
        (channels, L) with ``channels_first``, the rows an FFT takes, computed in that layout
        rather than transposed (a transposing copy of a long filter costs more than the product).

        Long inputs take the filter a few channels at a time: at 1M bases the whole
        (L, channels) filter is as large as an activation, its spectrum twice that.
        """
        with cpu_autocast_off(self.freq.device):
            weight = self.mlp[-1].weight if index is None else self.mlp[-1].weight[index]
            h = torch.mm(weight, features.t()) if channels_first else torch.nn.functional.linear(features, weight)
            if self.modulate:
                deltas = (self.deltas if index is None else self.deltas[index]).abs()
                t = self.t[:length]
                window = torch.exp(-t.t() * deltas[:, None] if channels_first else -t * deltas)
                h = h * (window + self.modulation_shift)
        return h

    def extra_repr(self) -> str:
        return f"l_max={self.l_max}, modulate={self.modulate}, shift={self.modulation_shift}"
