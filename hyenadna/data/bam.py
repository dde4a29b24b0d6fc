"""Reads from SAM/BAM/CRAM as sequences, and per-base coverage of reference windows, with pysam.

Filtering follows samtools' conventions: by default unmapped, secondary, supplementary, duplicate
and QC-failed reads are dropped (``samtools view -F 0xF04``), each switchable, plus a MAPQ and a
length floor. Sequences come as stored (reference orientation) or, with
``orientation="read"``, as sequenced (reverse-strand reads reverse-complemented back).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hyenadna.data.tokenizer import reverse_complement
from hyenadna.errors import HyenaDNAError

Orientation = Literal["reference", "read"]
SoftClips = Literal["keep", "drop"]

FLAG_UNMAPPED, FLAG_SECONDARY, FLAG_QCFAIL, FLAG_DUPLICATE, FLAG_SUPPLEMENTARY = 0x4, 0x100, 0x200, 0x400, 0x800
CIGAR_SOFT_CLIP, CIGAR_HARD_CLIP = 4, 5


@dataclass(frozen=True)
class ReadFilter:
    """Which reads to keep; the defaults match ``samtools view -F 0xF04``."""

    min_mapq: int = 0
    min_length: int = 0
    drop_unmapped: bool = True
    drop_secondary: bool = True
    drop_supplementary: bool = True
    drop_duplicate: bool = True
    drop_qcfail: bool = True
    drop_hard_clipped: bool = False

    @property
    def exclude_flags(self) -> int:
        flags = 0
        for on, bit in (
            (self.drop_unmapped, FLAG_UNMAPPED),
            (self.drop_secondary, FLAG_SECONDARY),
            (self.drop_supplementary, FLAG_SUPPLEMENTARY),
            (self.drop_duplicate, FLAG_DUPLICATE),
            (self.drop_qcfail, FLAG_QCFAIL),
        ):
            if on:
                flags |= bit
        return flags

    def keep(self, read) -> bool:
        """True when the pysam ``AlignedSegment`` passes (length checked on the stored sequence)."""
        if read.flag & self.exclude_flags:
            return False
        if read.mapping_quality < self.min_mapq and not read.is_unmapped:
            return False
        if self.min_length and (read.query_length or 0) < self.min_length:
            return False
        return not (self.drop_hard_clipped and read.cigartuples and _has_hard_clip(read.cigartuples))


def _has_hard_clip(cigar: list[tuple[int, int]]) -> bool:
    return cigar[0][0] == CIGAR_HARD_CLIP or cigar[-1][0] == CIGAR_HARD_CLIP


@dataclass(frozen=True)
class Read:
    """One read as a sequence, with where it aligned (``contig`` is None for unmapped reads)."""

    name: str
    sequence: str
    contig: str | None
    start: int
    end: int
    reverse: bool
    label: str | int | float | None = None


def open_alignments(path: str | os.PathLike, reference: str | os.PathLike | None = None):
    """Open SAM/BAM/CRAM with pysam (format detected from content); errors name the file.

    CRAM needs the reference it was compressed against unless its header's URLs resolve.
    """
    import pysam

    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"alignment file not found: {path}")
    if path.stat().st_size == 0:
        raise HyenaDNAError(f"{path}: empty file, not a SAM/BAM/CRAM")
    if reference is not None and not Path(reference).is_file():
        raise HyenaDNAError(f"reference FASTA not found: {reference}")
    try:
        handle = pysam.AlignmentFile(
            str(path), "r", reference_filename=str(reference) if reference else None, check_sq=False
        )
    except (OSError, ValueError) as exc:
        raise HyenaDNAError(f"{path}: cannot open as SAM/BAM/CRAM ({exc})") from None
    if handle.is_cram and reference is None:
        handle.close()
        raise HyenaDNAError(f"{path}: a CRAM file needs its reference FASTA (pass reference=...)")
    return handle


def _require_index(handle, path: Path) -> None:
    """A region needs an index, and one written after the file: an index older than its BAM
    (the BAM was rewritten) points at the wrong blocks, and htslib reads garbage or fails."""
    kind = "crai" if handle.is_cram else "bai"
    if not handle.has_index():
        raise HyenaDNAError(
            f"{path}: a region was asked for but the file has no index (.{kind}); "
            f"sort and index it with `samtools sort -o sorted.bam {path.name} && samtools index sorted.bam`"
        )
    candidates = (Path(f"{path}.{kind}"), path.with_suffix(f".{kind}"), Path(f"{path}.csi"))
    index = next((p for p in candidates if p.is_file()), None)
    if index is not None and index.stat().st_mtime_ns < path.stat().st_mtime_ns:
        raise HyenaDNAError(
            f"{index} is older than {path}: the file changed after it was indexed; rebuild the index with "
            f"`samtools index {path}`"
        )


def _records(handle, path: Path, region: str | None) -> Iterator:
    """Iterate pysam records, turning htslib errors mid-file into ours with the record number."""
    if region is not None:
        _require_index(handle, path)
        try:
            iterator = handle.fetch(region=region)
        except (ValueError, KeyError) as exc:
            raise HyenaDNAError(f"{path}: bad region {region!r} ({exc})") from None
    else:
        iterator = handle.fetch(until_eof=True)
    n = 0
    try:
        for record in iterator:
            n += 1
            yield record
    except (OSError, ValueError) as exc:
        raise HyenaDNAError(f"{path}: corrupt or truncated after record {n} ({exc})") from None


def iter_reads(
    path: str | os.PathLike,
    region: str | None = None,
    reference: str | os.PathLike | None = None,
    filters: ReadFilter | dict | None = None,
    soft_clips: SoftClips = "keep",
    orientation: Orientation = "reference",
    label_tag: str | None = None,
) -> Iterator[Read]:
    """Reads of an alignment file as sequences.

    Args:
        region: ``"chr:start-end"`` (1-based, samtools style) or a contig name; needs an index.
        reference: FASTA for CRAM.
        filters: which reads to keep (default: primary, mapped, not duplicate or QC-failed).
        soft_clips: ``"keep"`` the whole stored sequence or ``"drop"`` soft-clipped ends.
        orientation: ``"reference"`` as stored, or ``"read"`` as sequenced.
        label_tag: a tag (``"RG"``, ``"HP"``...) whose value becomes ``Read.label``; a read
            without it is an error naming the read.
    """
    path = Path(path)
    if soft_clips not in ("keep", "drop") or orientation not in ("reference", "read"):
        raise HyenaDNAError("soft_clips must be 'keep' or 'drop' and orientation 'reference' or 'read'")
    filters = as_read_filter(filters)
    with open_alignments(path, reference) as handle:
        for record in _records(handle, path, region):
            if not filters.keep(record):
                continue
            seq = record.query_sequence
            if seq is None:
                continue  # secondary records may omit SEQ ('*'); nothing to embed
            if soft_clips == "drop" and record.cigartuples:
                seq = seq[record.query_alignment_start : record.query_alignment_end]
            if orientation == "read" and record.is_reverse:
                seq = reverse_complement(seq)
            label = None
            if label_tag is not None:
                if not record.has_tag(label_tag):
                    raise HyenaDNAError(f"{path}: read {record.query_name!r} has no {label_tag} tag")
                label = record.get_tag(label_tag)
            yield Read(
                name=record.query_name,
                sequence=seq,
                contig=None if record.is_unmapped else record.reference_name,
                start=record.reference_start,
                end=record.reference_end if record.reference_end is not None else record.reference_start,
                reverse=record.is_reverse,
                label=label,
            )


def count_reads(path: str | os.PathLike, region: str | None = None, **kwargs) -> int:
    """How many reads :func:`iter_reads` yields with the same arguments."""
    return sum(1 for _ in iter_reads(path, region=region, **kwargs))


def coverage(
    path: str | os.PathLike,
    contig: str,
    start: int,
    end: int,
    reference: str | os.PathLike | None = None,
    filters: ReadFilter | dict | None = None,
) -> np.ndarray:
    """Per-base read depth over ``[start, end)`` (0-based), as int32.

    Counts aligned bases (CIGAR M, =, X) of the reads that pass ``filters``; deletions and
    reference skips do not count, as in ``samtools depth`` without ``-J``.
    """
    path = Path(path)
    filters = as_read_filter(filters)
    if end < start:
        raise HyenaDNAError(f"coverage window {contig}:{start}-{end} has end before start")
    depth = np.zeros(end - start + 1, dtype=np.int32)
    with open_alignments(path, reference) as handle:
        _require_index(handle, path)
        if contig not in handle.references:
            raise HyenaDNAError(f"{path}: no contig {contig!r} in the header")
        try:
            iterator = handle.fetch(contig, start, end)
            for record in iterator:
                if not filters.keep(record):
                    continue
                for block_start, block_end in record.get_blocks():
                    lo, hi = max(block_start, start), min(block_end, end)
                    if lo < hi:
                        depth[lo - start] += 1
                        depth[hi - start] -= 1
        except (OSError, ValueError) as exc:
            raise HyenaDNAError(f"{path}: cannot read {contig}:{start}-{end} ({exc})") from None
    return np.cumsum(depth[:-1], dtype=np.int32)


def as_read_filter(value: ReadFilter | dict | None) -> ReadFilter:
    """A ReadFilter from itself, a dict of its fields (as configs give it) or None (the defaults)."""
    if value is None:
        return ReadFilter()
    if isinstance(value, ReadFilter):
        return value
    if isinstance(value, dict):
        try:
            return ReadFilter(**value)
        except TypeError as exc:
            raise HyenaDNAError(f"bad read filter {value}: {exc}") from None
    raise HyenaDNAError(f"filters must be a ReadFilter or a dict, got {type(value).__name__}")
