"""A pretraining corpus: one or more genomes, each with a weight, contig choice and held-out splits.

Splits are by chromosome, as in HyenaDNA (the reference holds out whole human chromosomes for
validation and test). For a genome with too few contigs for that (a phage, a bacterium, one
human chromosome) a fraction at the end of every contig can be held out instead; the two kinds can
be combined. The split is a pure function of the config, so every process computes the same one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hyenadna.data.genome import Genome, SoftMaskPolicy
from hyenadna.errors import HyenaDNAError

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass
class GenomeSource:
    """One genome of a corpus and how to use it.

    Attributes:
        path: FASTA (plain, bgzip or gzip).
        weight: relative share of training windows drawn from this genome (species mixtures).
        include / exclude / pattern / min_length: which contigs to use (see ``Genome.select_contigs``).
        val_contigs / test_contigs: contigs held out whole for validation / test.
        val_fraction / test_fraction: share of the end of every remaining contig held out
            (the test part last, the validation part before it).
        soft_mask: ``"keep"`` lowercase bases or ``"upper"``-case them.
    """

    path: str
    weight: float = 1.0
    include: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    pattern: str | None = None
    min_length: int = 0
    val_contigs: list[str] = field(default_factory=list)
    test_contigs: list[str] = field(default_factory=list)
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    soft_mask: SoftMaskPolicy = "keep"

    def __post_init__(self) -> None:
        self.path = os.fspath(self.path)
        if not self.weight > 0:
            raise HyenaDNAError(f"{self.path}: weight must be positive, got {self.weight}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise HyenaDNAError(f"{self.path}: {name} must lie in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1:
            raise HyenaDNAError(f"{self.path}: val_fraction + test_fraction must be below 1")
        overlap = set(self.val_contigs) & set(self.test_contigs)
        if overlap:
            raise HyenaDNAError(f"{self.path}: contigs in both val_contigs and test_contigs: {sorted(overlap)}")


@dataclass(frozen=True)
class Interval:
    """A half-open stretch ``[start, end)`` of one contig of genome number ``genome``."""

    genome: int
    contig: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class Corpus:
    """Genomes and the intervals of each split; picklable (genomes reopen their files per process)."""

    def __init__(self, sources: list[GenomeSource | dict]) -> None:
        if not sources:
            raise HyenaDNAError("a corpus needs at least one genome")
        self.sources = [s if isinstance(s, GenomeSource) else GenomeSource(**s) for s in sources]
        self.genomes = [Genome(s.path, soft_mask=s.soft_mask) for s in self.sources]
        self.weights = [s.weight for s in self.sources]
        self._splits = {split: [] for split in SPLITS}
        for index, (source, genome) in enumerate(zip(self.sources, self.genomes)):
            for split, intervals in _split_genome(index, source, genome).items():
                self._splits[split].extend(intervals)

    def intervals(self, split: Split) -> list[Interval]:
        if split not in self._splits:
            raise HyenaDNAError(f"split must be one of {SPLITS}, got {split!r}")
        return list(self._splits[split])

    def fetch(self, interval: Interval, start: int, end: int) -> str:
        """Bases ``[start, end)`` in contig coordinates of ``interval``'s genome."""
        return self.genomes[interval.genome].fetch(interval.contig, start, end)

    def summary(self) -> str:
        lines = []
        for split in SPLITS:
            total = sum(iv.length for iv in self._splits[split])
            lines.append(f"{split}: {len(self._splits[split])} intervals, {total:,} bases")
        return "; ".join(lines)


def _split_genome(index: int, source: GenomeSource, genome: Genome) -> dict[Split, list[Interval]]:
    contigs = genome.select_contigs(source.include, source.exclude, source.pattern, source.min_length)
    chosen = set(contigs)
    for label, names in (("val_contigs", source.val_contigs), ("test_contigs", source.test_contigs)):
        missing = [c for c in names if c not in chosen]
        if missing:
            raise HyenaDNAError(f"{Path(source.path)}: {label} names contigs not selected in this genome: {missing}")
    out: dict[Split, list[Interval]] = {split: [] for split in SPLITS}
    for contig in contigs:
        size = genome.contigs[contig]
        if contig in source.val_contigs:
            out["val"].append(Interval(index, contig, 0, size))
        elif contig in source.test_contigs:
            out["test"].append(Interval(index, contig, 0, size))
        else:
            n_test = round(size * source.test_fraction)
            n_val = round(size * source.val_fraction)
            train_end, val_end = size - n_val - n_test, size - n_test
            out["train"].append(Interval(index, contig, 0, train_end))
            if n_val:
                out["val"].append(Interval(index, contig, train_end, val_end))
            if n_test:
                out["test"].append(Interval(index, contig, val_end, size))
    return out
