"""Genomic regions from BED or CSV/TSV files, and their sequences from a genome.

Coordinates are 0-based and half-open as in BED. A region on the ``-`` strand gives the reverse
complement of the genome's forward strand (what a promoter or an intron reads 5' to 3'). Regions
can be resized around their centre; a resized region that runs past a contig end is clipped and
filled with ``N``, while a region whose own coordinates lie outside its contig is an error naming
the file and line, since that almost always means the wrong genome build.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from hyenadna.data.genome import Genome
from hyenadna.data.tokenizer import reverse_complement
from hyenadna.errors import HyenaDNAError

Resize = Literal["none", "center", "extend", "truncate"]
RESIZE_POLICIES = ("none", "center", "extend", "truncate")


@dataclass(frozen=True)
class Region:
    """One region; ``extra`` holds the columns after the sixth (BED) or the other table columns."""

    contig: str
    start: int
    end: int
    name: str | None = None
    score: str | None = None
    strand: str = "."
    extra: tuple[str, ...] = ()
    where: str = field(default="", compare=False)  # "file, line N" for error messages

    @property
    def length(self) -> int:
        return self.end - self.start

    def label(self) -> str:
        """A name for outputs: the region's name, else ``contig:start-end(strand)``."""
        if self.name and self.name != ".":
            return self.name
        return f"{self.contig}:{self.start}-{self.end}" + (f"({self.strand})" if self.strand in "+-" else "")


def _open_lines(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def text_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, plain or gzip; a binary or otherwise-encoded file, or a
    gzip file cut short, is an error naming the file and line instead of a decoder's traceback."""
    lineno = 0
    with _open_lines(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):  # noqa: B007 (read in the handlers)
                yield line
        except UnicodeDecodeError as exc:
            raise HyenaDNAError(
                f"{path}: not UTF-8 text after line {lineno} (byte {exc.object[exc.start]:#04x}); is it a binary file, "
                "or saved in another encoding?"
            ) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise HyenaDNAError(
                f"{path}: the compressed file is cut short or corrupt after line {lineno} ({exc})"
            ) from None


def _parse_coords(where: str, contig: str, start: str, end: str, strand: str) -> tuple[int, int, str]:
    try:
        lo, hi = int(start), int(end)
    except ValueError:
        raise HyenaDNAError(f"{where}: start and end must be integers, got {start!r}, {end!r}") from None
    if lo < 0 or hi < lo:
        raise HyenaDNAError(f"{where}: bad interval {contig}:{lo}-{hi} (need 0 <= start <= end)")
    strand = strand or "."
    if strand not in ("+", "-", "."):
        raise HyenaDNAError(f"{where}: strand must be '+', '-' or '.', got {strand!r}")
    return lo, hi, strand


def read_bed(path: str | os.PathLike) -> Iterator[Region]:
    """Regions of a BED file (3 to 12+ columns, plain or gzip); header, track and browser lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"BED file not found: {path}")
    seen = False
    for lineno, line in enumerate(text_lines(path), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 3:
            fields = line.split()
        where = f"{path}, line {lineno}"
        if len(fields) < 3:
            raise HyenaDNAError(f"{where}: a BED line needs at least 3 columns (contig, start, end)")
        strand = fields[5] if len(fields) > 5 else "."
        start, end, strand = _parse_coords(where, fields[0], fields[1], fields[2], strand)
        seen = True
        yield Region(
            contig=fields[0],
            start=start,
            end=end,
            name=fields[3] if len(fields) > 3 else None,
            score=fields[4] if len(fields) > 4 else None,
            strand=strand,
            extra=tuple(fields[6:]),
            where=where,
        )
    if not seen:
        raise HyenaDNAError(f"{path}: no regions in the file")


def sniff_delimiter(path: Path) -> str:
    """Tab for .tsv/.bed/.txt (and their .gz), comma for .csv."""
    name = path.name.lower().removesuffix(".gz")
    return "," if name.endswith(".csv") else "\t"


def read_table_rows(path: str | os.PathLike, required: list[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Rows of a CSV/TSV with a header line, as ``(where, row)``; missing columns are an error."""
    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"table not found: {path}")
    reader = csv.DictReader(text_lines(path), delimiter=sniff_delimiter(path))
    if reader.fieldnames is None:
        raise HyenaDNAError(f"{path}: empty file, expected a header line")
    missing = [c for c in required if c not in reader.fieldnames]
    if missing:
        raise HyenaDNAError(f"{path}: no column(s) {missing}; the header has {reader.fieldnames}")
    rows = 0
    for row in reader:
        rows += 1
        where = f"{path}, line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise HyenaDNAError(f"{where}: expected {len(reader.fieldnames)} fields")
        yield where, row
    if rows == 0:
        raise HyenaDNAError(f"{path}: a header but no rows")


def read_region_table(
    path: str | os.PathLike,
    contig_col: str = "chrom",
    start_col: str = "start",
    end_col: str = "end",
    strand_col: str | None = "strand",
    name_col: str | None = "name",
) -> Iterator[Region]:
    """Regions of a CSV/TSV with a header; strand and name columns are used when present."""
    path = Path(path)
    for where, row in read_table_rows(path, [contig_col, start_col, end_col]):
        strand = row.get(strand_col, ".") if strand_col else "."
        start, end, strand = _parse_coords(where, row[contig_col], row[start_col], row[end_col], strand)
        others = tuple(v for k, v in row.items() if k not in (contig_col, start_col, end_col, strand_col, name_col))
        yield Region(
            contig=row[contig_col],
            start=start,
            end=end,
            name=row.get(name_col) if name_col else None,
            strand=strand,
            extra=others,
            where=where,
        )


def read_regions(path: str | os.PathLike, **table_columns: str | None) -> Iterator[Region]:
    """BED (``.bed``, ``.bed.gz``, ``.narrowPeak``...) or, for ``.csv``/``.tsv``, a table with a header."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return read_region_table(path, **table_columns)
    return read_bed(path)


def resize(region: Region, length: int | None, policy: Resize = "center") -> Region:
    """Resize around the centre: ``center`` to exactly ``length``; ``extend`` only grows shorter
    regions to ``length``; ``truncate`` only shrinks longer ones; ``none`` leaves it.

    The new start is ``start + floor((old_length - length) / 2)`` whatever the strand, so when
    the change is odd the extra base is added (or kept) on the lower-coordinate side, and a region
    and its reverse complement cover the same bases.
    """
    if policy not in RESIZE_POLICIES:
        raise HyenaDNAError(f"resize policy must be one of {RESIZE_POLICIES}, got {policy!r}")
    if policy == "none" or length is None:
        return region
    if length < 1:
        raise HyenaDNAError(f"resize length must be positive, got {length}")
    if (policy == "extend" and region.length >= length) or (policy == "truncate" and region.length <= length):
        return region
    start = region.start + (region.length - length) // 2
    return replace(region, start=start, end=start + length)


def region_sequence(
    genome: Genome,
    region: Region,
    length: int | None = None,
    policy: Resize = "none",
    flank: int = 0,
    strand_aware: bool = True,
) -> str:
    """The sequence of ``region`` after resizing and adding ``flank`` bases each side.

    The region's own coordinates must lie on its contig (else an error naming the line); the
    resized or flanked window may run past the contig ends and is then padded with ``N``.
    """
    where = region.where or region.label()
    if region.contig not in genome.contigs:
        raise HyenaDNAError(f"{where}: contig {region.contig!r} is not in {genome.path}")
    size = genome.contigs[region.contig]
    if region.end > size:
        raise HyenaDNAError(
            f"{where}: {region.contig}:{region.start}-{region.end} runs past the contig's end "
            f"({size:,} in {genome.path})"
        )
    window = resize(region, length, policy)
    seq = genome.fetch(window.contig, window.start - flank, window.end + flank, pad=True)
    if strand_aware and region.strand == "-":
        seq = reverse_complement(seq)
    return seq
