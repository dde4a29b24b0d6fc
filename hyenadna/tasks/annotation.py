"""Gene annotations in SpliceAI's table format, and splits of a chromosome by region.

SpliceAI ships one canonical transcript per gene (``spliceai/annotations/grch37.txt`` in its
wheel): name, chromosome, strand, transcript start and end, and comma-separated exon starts and
ends, 0-based and half-open. That is enough for splice-site and promoter tasks on any genome the
annotation matches.

A task on one chromosome is split **by region**: every gene lies wholly in one of the train, val
and test stretches (genes that cross a boundary are dropped), so no gene, and no window of one,
is in two splits.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from hyenadna.errors import HyenaDNAError

SPLICEAI_ANNOTATION = "spliceai/annotations/grch37.txt"
"""Path of the GRCh37 annotation inside the spliceai wheel."""


@dataclass(frozen=True)
class Gene:
    """One transcript: 0-based half-open coordinates, exons sorted by start."""

    name: str
    chrom: str
    strand: str
    tx_start: int
    tx_end: int
    exons: tuple[tuple[int, int], ...]

    @property
    def tss(self) -> int:
        """The transcription start: the first transcribed base, on the gene's strand."""
        return self.tx_start if self.strand == "+" else self.tx_end - 1

    def donors(self) -> list[int]:
        """Exon-intron boundaries (genome coordinate between two bases) at the 5' end of each intron."""
        ends = [e for _, e in self.exons[:-1]]
        starts = [s for s, _ in self.exons[1:]]
        return ends if self.strand == "+" else starts

    def acceptors(self) -> list[int]:
        """Intron-exon boundaries at the 3' end of each intron."""
        ends = [e for _, e in self.exons[:-1]]
        starts = [s for s, _ in self.exons[1:]]
        return starts if self.strand == "+" else ends


def _ints(field: str, where: str) -> list[int]:
    try:
        return [int(v) for v in field.strip().strip(",").split(",") if v]
    except ValueError:
        raise HyenaDNAError(f"{where}: not a comma-separated list of integers: {field[:40]!r}") from None


def parse_spliceai_table(lines: Iterator[str], source: str) -> Iterator[Gene]:
    """Genes of a SpliceAI annotation table (header line ``#NAME CHROM STRAND ...``)."""
    for number, line in enumerate(lines, start=1):
        if line.startswith("#") or not line.strip():
            continue
        where = f"{source}:{number}"
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 7:
            raise HyenaDNAError(f"{where}: expected 7 tab-separated fields, found {len(fields)}")
        name, chrom, strand, tx_start, tx_end, starts, ends = fields
        if strand not in "+-" or len(strand) != 1:
            raise HyenaDNAError(f"{where}: strand must be + or -, got {strand!r}")
        exon_starts, exon_ends = _ints(starts, where), _ints(ends, where)
        if len(exon_starts) != len(exon_ends) or not exon_starts:
            raise HyenaDNAError(f"{where}: {len(exon_starts)} exon starts but {len(exon_ends)} ends")
        exons = tuple(sorted(zip(exon_starts, exon_ends)))
        if any(s >= e for s, e in exons) or any(a[1] > b[0] for a, b in pairwise(exons)):
            raise HyenaDNAError(f"{where}: exons of {name} are empty or overlap")
        yield Gene(name, chrom, strand, int(tx_start), int(tx_end), exons)


def read_spliceai_annotation(path: str | os.PathLike, chrom: str | None = None) -> list[Gene]:
    """Genes of the SpliceAI annotation, from the table itself or from the spliceai wheel
    (``pip download --no-deps spliceai==1.3.1``), optionally those of one chromosome only."""
    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"annotation not found: {path}")
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            try:
                text = wheel.read(SPLICEAI_ANNOTATION).decode("ascii")
            except KeyError:
                raise HyenaDNAError(f"{path}: the wheel has no {SPLICEAI_ANNOTATION}") from None
        genes = list(parse_spliceai_table(iter(text.splitlines()), f"{path}!{SPLICEAI_ANNOTATION}"))
    else:
        with open(path, encoding="ascii") as handle:
            genes = list(parse_spliceai_table(handle, str(path)))
    return [g for g in genes if chrom is None or g.chrom.removeprefix("chr") == chrom.removeprefix("chr")]


@dataclass(frozen=True)
class RegionSplit:
    """Train / val / test stretches of one chromosome: ``[0, val_start)``, ``[val_start,
    test_start)``, ``[test_start, length)``."""

    val_start: int
    test_start: int
    length: int

    @classmethod
    def by_fraction(cls, length: int, val_fraction: float, test_fraction: float) -> RegionSplit:
        """The last ``test_fraction`` is test, the ``val_fraction`` before it val: the same
        rounding as a pretraining corpus's held-out fractions, so a task's test region can be
        exactly the region pretraining held out."""
        n_test = round(length * test_fraction)
        test_start = length - n_test
        return cls(test_start - round(length * val_fraction), test_start, length)

    def bounds(self, split: str) -> tuple[int, int]:
        """``[start, end)`` of ``split`` ("train", "val" or "test")."""
        spans = {"train": (0, self.val_start), "val": (self.val_start, self.test_start),
                 "test": (self.test_start, self.length)}  # fmt: skip
        if split not in spans:
            raise HyenaDNAError(f"unknown split {split!r}; expected one of {list(spans)}")
        return spans[split]

    def of_span(self, start: int, end: int) -> str | None:
        """The split holding all of ``[start, end)``, or None when it crosses a boundary."""
        for name in ("train", "val", "test"):
            lo, hi = self.bounds(name)
            if lo <= start and end <= hi:
                return name
        return None
