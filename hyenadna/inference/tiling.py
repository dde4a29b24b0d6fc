"""Sequences longer than the model: cut into overlapping windows, results stitched back per base.

A sequence that fits the model (at most ``l_max`` bases) is never tiled. A longer one is cut
into windows of ``window`` bases every ``stride`` bases, the last window aligned to the
sequence's end, and every base takes its result (log-likelihood, entropy, hidden state) from
the **first** window that holds it. HyenaDNA is causal, so a base's result in a window depends
on the window's bases before it: taking it from the first window gives it the most left context
that any window offers, between ``window - stride`` and ``window - 1`` bases (all bases before it
within the first window). The stitched per-base results are therefore those of a long-context
pass whose context is truncated to that many bases, not those of one pass over the whole
sequence (which no model with a finite ``l_max`` can make); they equal, base for base, what the
window they come from gives (tested).

Pooled embeddings of a tiled sequence pool the stitched per-base states (mean, max, first, center,
last over the whole sequence, each base once). Predictions of a fine-tuned model, whose head
reads a whole window, are combined over the windows (:func:`tiled_per_window`):

* ``combine="mean"``: the mean of the windows' probabilities (or values), which for a softmax
  still sum to 1;
* ``combine="max"``: the maximum over the windows of each output's **logit**, then the softmax
  (or sigmoid): the class most strongly called in any window wins, and multiclass probabilities
  sum to 1 (a maximum of each class's probability taken separately would not). Sigmoid and
  regression outputs are monotone in their logit, so for them it is the maximum of the outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import NamedTuple

import numpy as np

from hyenadna.errors import HyenaDNAError

COMBINE = ("mean", "max")


class Span(NamedTuple):
    """A window ``start .. end`` of a sequence and the bases it contributes, ``keep_start ..
    keep_end`` (0-based, half-open, sequence coordinates)."""

    start: int
    end: int
    keep_start: int
    keep_end: int


@dataclass
class Tiling:
    """How sequences longer than the model are cut (module docstring); ``window`` 0 is off.

    Attributes:
        window: bases per window (at most the model's l_max); 0: no tiling, longer sequences are
            refused.
        stride: bases between window starts (default: half the window); smaller than the window,
            so that every base after the first window keeps at least window - stride bases of
            left context.
        combine: how a fine-tuned model's predictions over the windows are combined: ``mean``
            of the probabilities, or ``max`` of the logits before the softmax (module docstring).
    """

    window: int = 0
    stride: int = 0
    combine: str = "mean"

    def __post_init__(self) -> None:
        for name in ("window", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise HyenaDNAError(f"tiling {name} must be a whole number of bases, got {value!r}")
            setattr(self, name, int(value))
        if not isinstance(self.combine, str):
            raise HyenaDNAError(f"tiling combine must be one of {COMBINE}, got {self.combine!r}")
        if self.window < 0 or self.window == 1:
            raise HyenaDNAError(f"tiling window must be 0 (off) or at least 2 bases, got {self.window}")
        if self.window and self.stride == 0:
            self.stride = self.window // 2
        if self.window and not 0 < self.stride < self.window:
            raise HyenaDNAError(f"tiling stride must lie in 1..window-1 ({self.window - 1}), got {self.stride}")
        if self.combine not in COMBINE:
            raise HyenaDNAError(f"tiling combine must be one of {COMBINE}, got {self.combine!r}")

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def check(self, l_max: int) -> None:
        if self.window > l_max:
            raise HyenaDNAError(f"tiling window {self.window:,} is longer than the model's l_max {l_max:,}")

    def spans(self, length: int) -> list[Span]:
        """The windows of a sequence of ``length`` bases; one window (itself) when it fits."""
        if length <= self.window:
            return [Span(0, length, 0, length)]
        starts = list(range(0, length - self.window, self.stride))
        if starts[-1] != length - self.window:
            starts.append(length - self.window)
        spans, kept = [], 0
        for start in starts:
            end = start + self.window
            spans.append(Span(start, end, kept, end))
            kept = end
        return spans


def tiled_per_base(
    seqs: Sequence[str], l_max: int, tiling: Tiling, fn: Callable[[list[str]], list[np.ndarray]]
) -> list[np.ndarray]:
    """``fn`` (strings -> per-base arrays (len, ...)) over every sequence, the ones longer than
    ``l_max`` through their windows, stitched (module docstring). One call of ``fn`` takes every
    window and every whole sequence, so the batching engine sees them all at once."""
    pieces: list[str] = []
    places: list[tuple[int, Span]] = []
    for i, seq in enumerate(seqs):
        spans = tiling.spans(len(seq)) if len(seq) > l_max else [Span(0, len(seq), 0, len(seq))]
        for span in spans:
            pieces.append(seq[span.start : span.end])
            places.append((i, span))
    results = fn(pieces)
    out: list = [None] * len(seqs)
    for (i, span), values in zip(places, results):
        if out[i] is None:
            out[i] = np.empty((len(seqs[i]), *values.shape[1:]), dtype=values.dtype)
        out[i][span.keep_start : span.keep_end] = values[span.keep_start - span.start : span.keep_end - span.start]
    return out


def tiled_per_window(
    seqs: Sequence[str], l_max: int, tiling: Tiling, fn: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """``fn`` (strings -> (N, outputs)) over every sequence, a longer one's windows combined by
    the mean or the maximum (``tiling.combine``) of what ``fn`` gives: for ``max`` the caller
    passes logits and applies the softmax after (module docstring)."""
    pieces, owners = [], []
    for i, seq in enumerate(seqs):
        spans = tiling.spans(len(seq)) if len(seq) > l_max else [Span(0, len(seq), 0, len(seq))]
        pieces += [seq[s.start : s.end] for s in spans]
        owners += [i] * len(spans)
    values = fn(pieces)
    owners_array = np.asarray(owners)
    reduce = np.mean if tiling.combine == "mean" else np.max
    return np.stack([reduce(values[owners_array == i], axis=0) for i in range(len(seqs))]) if len(seqs) else values


def too_long_hint(seqs: Sequence[str], l_max: int, names: Sequence[str] | None = None) -> None:
    """Refuse a sequence longer than the model, naming it (``names[i]``, else "sequence i") and
    the option that would tile it."""
    for i, seq in enumerate(seqs):
        if len(seq) > l_max:
            name = names[i] if names is not None else f"sequence {i}"
            raise HyenaDNAError(
                f"{name} has {len(seq):,} bases; the model takes 1 to {l_max:,}: "
                "tile longer sequences with tiling=Tiling(window=...) (--tiling.window on the command line)"
            )
