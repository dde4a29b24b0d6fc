"""Pretraining windows over a corpus: random windows for training, fixed strided ones for validation.

Each item is a next-base prediction example: ``length + 1`` bases are read, ``input_ids`` are the
first ``length`` and ``labels`` the last ``length``.

Determinism: training window ``i`` of epoch ``e`` is drawn from a generator seeded with
``(seed, e, i)`` alone. Which rank, worker or batch asks for it does not matter, so a run on 8 GPUs
(whose distributed sampler splits the indices), a run resumed from a checkpoint and a single-process
run all see the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from hyenadna.data.corpus import Corpus, Interval, Split
from hyenadna.data.tokenizer import N_ID, CharacterTokenizer, reverse_complement_ids
from hyenadna.errors import HyenaDNAError


def _n_fraction(ids: np.ndarray) -> float:
    return float(np.count_nonzero(ids == N_ID)) / max(ids.size, 1)


def _example(ids: np.ndarray) -> dict[str, torch.Tensor]:
    tensor = torch.from_numpy(ids)
    return {"input_ids": tensor[:-1], "labels": tensor[1:]}


class RandomWindows(Dataset):
    """``samples_per_epoch`` random windows per epoch, uniform over valid start positions.

    A genome is picked by its weight, then a start uniformly over every position of that genome's
    split intervals where a whole window fits. Windows whose share of ``N`` exceeds
    ``max_n_fraction`` are redrawn (up to ``max_tries`` times), never padded. With probability
    ``rc_prob`` a window is reverse-complemented. Call :meth:`set_epoch` before each epoch.
    """

    def __init__(
        self,
        corpus: Corpus,
        length: int,
        samples_per_epoch: int,
        split: Split = "train",
        seed: int = 0,
        max_n_fraction: float = 0.1,
        rc_prob: float = 0.0,
        max_tries: int = 100,
        tokenizer: CharacterTokenizer | None = None,
    ) -> None:
        if length < 1 or samples_per_epoch < 1:
            raise HyenaDNAError(f"length and samples_per_epoch must be positive, got {length}, {samples_per_epoch}")
        if not 0 <= rc_prob <= 1 or not 0 <= max_n_fraction <= 1:
            raise HyenaDNAError("rc_prob and max_n_fraction must lie in [0, 1]")
        self.corpus = corpus
        self.length = length
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.max_n_fraction = max_n_fraction
        self.rc_prob = rc_prob
        self.max_tries = max_tries
        self.tokenizer = tokenizer or CharacterTokenizer()
        self.epoch = 0
        span = length + 1
        by_genome: list[list[Interval]] = [[] for _ in corpus.genomes]
        for iv in corpus.intervals(split):
            if iv.length >= span:
                by_genome[iv.genome].append(iv)
        self._genomes = [g for g, ivs in enumerate(by_genome) if ivs]
        if not self._genomes:
            raise HyenaDNAError(f"no {split} interval of the corpus holds a window of {span:,} bases")
        self._intervals = [by_genome[g] for g in self._genomes]
        # Number of valid starts in each interval, accumulated: a uniform draw over the total
        # picks interval and offset in one step.
        self._cumulative = [np.cumsum([iv.length - span + 1 for iv in ivs]) for ivs in self._intervals]
        weights = np.asarray([corpus.weights[g] for g in self._genomes], dtype=np.float64)
        self._probs = weights / weights.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def locate(self, index: int) -> tuple[Interval, int, bool]:
        """The (interval, start, reverse-complemented) of window ``index`` in the current epoch."""
        iv, start, rc, _ = self._draw(index)
        return iv, start, rc

    def _draw(self, index: int) -> tuple[Interval, int, bool, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        span = self.length + 1
        for _ in range(self.max_tries):
            g = int(rng.choice(len(self._genomes), p=self._probs)) if len(self._genomes) > 1 else 0
            cum = self._cumulative[g]
            draw = int(rng.integers(cum[-1]))
            k = int(np.searchsorted(cum, draw, side="right"))
            iv = self._intervals[g][k]
            start = iv.start + draw - (int(cum[k - 1]) if k else 0)
            rc = bool(rng.random() < self.rc_prob)
            ids = self._encode(self.corpus.fetch(iv, start, start + span), iv, start)
            if _n_fraction(ids) <= self.max_n_fraction:
                return iv, start, rc, ids
        raise HyenaDNAError(
            f"{self.max_tries} random windows of {span:,} bases in a row had more than "
            f"{self.max_n_fraction:.0%} N; raise max_n_fraction or choose contigs with less N"
        )

    def _encode(self, seq: str, iv: Interval, start: int) -> np.ndarray:
        name = f"{self.corpus.genomes[iv.genome].name}:{iv.contig}:{start}"
        return self.tokenizer.encode_bases(seq, name=name)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(index)
        _, _, rc, ids = self._draw(index)
        if rc:
            ids = reverse_complement_ids(torch.from_numpy(ids)).numpy()
        return _example(ids)


class StridedWindows(Dataset):
    """Fixed windows every ``stride`` bases along each interval of a split (validation, test).

    Windows with more than ``max_n_fraction`` N are left out when the dataset is built, so the
    set is the same in every epoch and every process. ``max_windows`` keeps an evenly spaced
    subset when a held-out chromosome would give more windows than a validation pass needs.
    """

    def __init__(
        self,
        corpus: Corpus,
        length: int,
        split: Split = "val",
        stride: int | None = None,
        max_n_fraction: float = 0.1,
        max_windows: int | None = None,
        tokenizer: CharacterTokenizer | None = None,
    ) -> None:
        self.corpus = corpus
        self.length = length
        self.stride = stride or length
        if self.stride < 1:
            raise HyenaDNAError(f"stride must be positive, got {stride}")
        self.tokenizer = tokenizer or CharacterTokenizer()
        self.max_n_fraction = max_n_fraction
        self.windows: list[tuple[Interval, int]] = []
        for iv in corpus.intervals(split):
            self.windows.extend(self._scan(iv))
        if max_windows is not None and len(self.windows) > max_windows:
            keep = np.linspace(0, len(self.windows) - 1, max_windows).round().astype(int)
            self.windows = [self.windows[k] for k in keep]
        if not self.windows:
            raise HyenaDNAError(
                f"no {split} window of {length + 1:,} bases with at most {max_n_fraction:.0%} N ({corpus.summary()})"
            )

    def _scan(self, iv: Interval, block: int = 1 << 22) -> list[tuple[Interval, int]]:
        """Strided starts in ``iv`` whose window passes the N filter, read in blocks of ~4 Mb."""
        span = self.length + 1
        starts = np.arange(iv.start, iv.end - span + 1, self.stride)
        kept: list[tuple[Interval, int]] = []
        per_block = max(1, block // self.stride)
        for b in range(0, starts.size, per_block):
            chunk = starts[b : b + per_block]
            lo, hi = int(chunk[0]), int(chunk[-1]) + span
            raw = np.frombuffer(self.corpus.fetch(iv, lo, hi).encode("ascii"), dtype=np.uint8)
            is_n = (raw == ord("N")) | (raw == ord("n"))
            cum = np.concatenate([[0], np.cumsum(is_n, dtype=np.int64)])
            offsets = chunk - lo
            n_count = cum[offsets + span] - cum[offsets]
            kept.extend((iv, int(s)) for s, n in zip(chunk, n_count) if n <= self.max_n_fraction * span)
        return kept

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        iv, start = self.windows[index]
        seq = self.corpus.fetch(iv, start, start + self.length + 1)
        name = f"{self.corpus.genomes[iv.genome].name}:{iv.contig}:{start}"
        return _example(self.tokenizer.encode_bases(seq, name=name))


@dataclass
class LengthStage:
    """A sequence-length warmup stage: ``epochs`` epochs of windows of ``length`` bases (a divisor
    of the final length); the batch grows by the same factor, so tokens per step stay constant."""

    length: int
    epochs: int = 1
