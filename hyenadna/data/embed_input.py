"""Where ``hyenadna embed`` reads its sequences: a FASTA (whole records, or a genome in windows), a
BED or CSV region file with its genome, or the reads of a SAM/BAM/CRAM; the options that go with
each kind, checked before anything is created; and the records they give, in file order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hyenadna.errors import HyenaDNAError


@dataclass
class EmbedInput:
    """Where the sequences come from (exactly one of ``fasta``, ``bed``, ``bam``).

    Attributes:
        fasta: a FASTA file; every record is embedded whole, or, with ``window``, cut into windows.
        window: embed a genome FASTA as windows of this many bases (records named
            ``contig:start-end``, 1-based; windows of N alone are skipped), streamed through its
            index: memory stays bounded whatever the genome's size.
        stride: bases between window starts (default: the window).
        bed: a BED or CSV/TSV region file, read against ``genome``.
        genome: the genome FASTA for ``bed``.
        length: bases each region is resized to (with ``resize``; see hyenadna.data.intervals).
        resize: how a region is resized to ``length``: ``none``, ``center``, ``extend`` or ``truncate``.
        flank: bases added each side of each (resized) region.
        bam: a SAM/BAM/CRAM file; every read that passes the filters is embedded.
        region: restrict reads, or genome windows, to ``chr:start-end`` or a contig (needs an index).
        reference: the reference FASTA of a CRAM.
        min_mapq: drop reads below this mapping quality.
        orientation: reads ``as stored`` (reference) or as sequenced (read).
    """

    fasta: str | None = None
    window: int | None = None
    stride: int | None = None
    bed: str | None = None
    genome: str | None = None
    length: int | None = None
    resize: str = "none"
    flank: int = 0
    bam: str | None = None
    region: str | None = None
    reference: str | None = None
    min_mapq: int = 0
    orientation: str = "reference"


def check_input(source: EmbedInput) -> None:
    """Refuse, before anything is created, an input whose options do not go together: each
    option belongs to one kind of input, and one given to another kind would be ignored."""
    from hyenadna.checks.values import integer, positive
    from hyenadna.data.intervals import RESIZE_POLICIES

    given = [k for k in ("fasta", "bed", "bam") if getattr(source, k)]
    if len(given) != 1:
        raise HyenaDNAError(f"give exactly one input of fasta, bed (with genome) or bam; got {given or 'none'}")
    kind = given[0]
    belongs = {"window": "fasta", "stride": "fasta", "genome": "bed", "length": "bed", "flank": "bed",
               "reference": "bam", "min_mapq": "bam"}  # fmt: skip
    for option, owner in belongs.items():
        value = getattr(source, option)
        if value not in (None, 0) and owner != kind:
            raise HyenaDNAError(f"--input.{option} applies to a --input.{owner} input, not to --input.{kind}")
    if source.resize != "none" and kind != "bed":
        raise HyenaDNAError(f"--input.resize applies to a --input.bed input, not to --input.{kind}")
    if source.region and not (kind == "bam" or source.window):
        raise HyenaDNAError(
            "--input.region restricts the reads of a --input.bam or the windows of a genome (--input.fasta with "
            "--input.window); a FASTA without --input.window is embedded record by record"
        )
    if source.stride is not None and not source.window:
        raise HyenaDNAError("--input.stride needs --input.window")
    for option in ("window", "stride", "length"):
        if getattr(source, option) is not None:
            positive(f"--input.{option}", getattr(source, option))
    integer("--input.flank", source.flank, low=0)
    integer("--input.min_mapq", source.min_mapq, low=0, high=255)
    if kind == "bed" and not source.genome:
        raise HyenaDNAError("a BED input needs its genome FASTA (--input.genome)")
    if source.resize not in RESIZE_POLICIES:
        raise HyenaDNAError(f"--input.resize must be one of {RESIZE_POLICIES}, got {source.resize!r}")
    if source.orientation not in ("reference", "read"):
        raise HyenaDNAError(f"--input.orientation must be reference or read, got {source.orientation!r}")


@dataclass(frozen=True)
class EmbedRecord:
    name: str
    sequence: str
    contig: str
    start: int
    end: int
    strand: str


def iter_records(source: EmbedInput) -> Iterator[EmbedRecord]:
    """The records of ``source`` in file order."""
    given = [k for k in ("fasta", "bed", "bam") if getattr(source, k)]
    if len(given) != 1:
        raise HyenaDNAError(f"give exactly one input of fasta, bed (with genome) or bam; got {given or 'none'}")
    if source.fasta:
        from hyenadna.data.fasta import read_fasta_records

        if source.window:  # a genome, streamed window by window through its index
            from hyenadna.data.genome import Genome

            genome = Genome(source.fasta)
            for contig, start, end in genome.windows(source.window, source.stride, source.region):
                seq = genome.fetch(contig, start, end)
                if seq.strip("Nn"):  # a window of N alone says nothing: not embedded
                    yield EmbedRecord(f"{contig}:{start + 1}-{end}", seq, contig, start, end, ".")
            return
        for r in read_fasta_records(source.fasta):
            yield EmbedRecord(r.name, r.sequence, r.name, 0, len(r.sequence), ".")
    elif source.bed:
        from hyenadna.data.genome import Genome
        from hyenadna.data.intervals import read_regions, region_sequence, resize

        if not source.genome:
            raise HyenaDNAError("a BED input needs its genome FASTA (genome=...)")
        genome = Genome(source.genome)
        for region in read_regions(source.bed):
            seq = region_sequence(genome, region, source.length, source.resize, source.flank)
            window = resize(region, source.length, source.resize)
            yield EmbedRecord(
                region.label(),
                seq,
                region.contig,
                window.start - source.flank,
                window.end + source.flank,
                region.strand,
            )
    else:
        from hyenadna.data.bam import ReadFilter, iter_reads

        filters = ReadFilter(min_mapq=source.min_mapq)
        for read in iter_reads(source.bam, source.region, source.reference, filters, orientation=source.orientation):
            strand = "-" if read.reverse else "+"
            yield EmbedRecord(read.name, read.sequence, read.contig or "*", read.start, read.end, strand)
