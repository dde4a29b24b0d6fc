"""Variants of a VCF/BCF as the windows that ``hyenadna score`` compares, and the scorer interface.

For each ALT allele of each record (multi-allelic records are split), a reference window of
``window`` bases is cut from the genome with the REF allele starting at its centre, and an
alternate window is built from the same left flank, the ALT allele, and as much right flank as
keeps the length at ``window`` (so indels compare windows of equal length). A record whose REF
does not match the genome, whose contig is unknown, or whose allele is symbolic (``<DEL>``,
``*``, breakends) or longer than ``max_allele`` gets a status instead of windows, as does one
whose REF or ALT does not fit in the window from the variant's start on (``window - window // 2``
bases): status ``longer_than_window``. A REF cut by the window's end would compare a reference
window that lacks part of the deleted bases with an alternate window that lacks all of them, a
number that looks like a score and is not one.

A :class:`WindowScorer` turns the windows of a batch of alleles into score columns: the language
model's log-likelihood ratios (:mod:`hyenadna.pipelines.score`) or a fine-tuned head's changes
(:mod:`hyenadna.analysis.variant_effects`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hyenadna.errors import HyenaDNAError

BASES = set("ACGT")


@dataclass(frozen=True)
class InfoField:
    """An INFO field (Number=A) of the annotated VCF, filled from one column of the scores TSV."""

    key: str
    column: str
    description: str


LLR_INFO = InfoField("HYENADNA_LLR", "llr", "HyenaDNA log-likelihood ratio, alt minus ref (nats per base)")
"""The language model's score in the annotated VCF (the default of :func:`hyenadna.io.vcf_annotate.annotate_vcf`)."""


@dataclass
class WindowScorer:
    """How the windows of a batch of alleles become scores: the TSV's score ``columns``, a
    function from jobs to one tuple per job (None for jobs without windows), the INFO fields of
    the annotated VCF, and what identifies the model for a resume."""

    columns: tuple[str, ...]
    score: Callable[[list[VariantJob]], list[tuple | None]]
    info: list[InfoField]
    model: str


@dataclass
class VariantJob:
    """One ALT allele of one VCF record, with its windows when they could be built."""

    chrom: str
    pos: int  # 1-based, as in the VCF
    id: str
    ref: str
    alt: str
    status: str = "ok"
    ref_window: str = ""
    alt_window: str = ""


def open_variants(path: str | os.PathLike):
    """A pysam VariantFile for VCF, bgzipped VCF or BCF; plain-gzip VCFs go through the cache."""
    import pysam

    from hyenadna.data.files import compression, decompress_to_cache

    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"VCF file not found: {path}")
    source = decompress_to_cache(path) if compression(path) == "gzip" else path
    previous = pysam.set_verbosity(0)  # htslib's header warnings are not the user's problem here
    try:
        return pysam.VariantFile(str(source))
    except (OSError, ValueError) as exc:
        raise HyenaDNAError(f"{path}: cannot open as VCF/BCF ({exc})") from None
    finally:
        pysam.set_verbosity(previous)


def variant_jobs(vcf: str | os.PathLike, genome, window: int, max_allele: int = 100) -> Iterator[VariantJob]:
    """ALT alleles of the VCF in file order, with reference and alternate windows."""
    handle = open_variants(vcf)
    records = iter(handle)
    number = 0  # of the record being read, counted from 1
    try:
        while True:
            number += 1
            try:
                record = next(records)
            except StopIteration:
                return
            except (OSError, ValueError) as exc:
                raise HyenaDNAError(f"{vcf}: cannot read record {number} ({exc})") from None
            for alt in record.alts or ():
                job = VariantJob(record.chrom, record.pos, record.id or ".", record.ref, alt)
                _build_windows(job, genome, window, max_allele)
                yield job
    finally:
        handle.close()


def _build_windows(job: VariantJob, genome, window: int, max_allele: int) -> None:
    if job.alt.startswith("<") or job.alt == "*" or "[" in job.alt or "]" in job.alt or job.alt == ".":
        job.status = "symbolic_allele"
        return
    if not set(job.ref.upper()) <= BASES or not set(job.alt.upper()) <= BASES:
        job.status = "invalid_allele"  # IUPAC codes, N or other letters: no base to score
        return
    if max(len(job.ref), len(job.alt)) > max_allele:
        job.status = "allele_too_long"
        return
    if max(len(job.ref), len(job.alt)) > window - window // 2:  # room from the variant's start on
        job.status = "longer_than_window"
        return
    if job.chrom not in genome.contigs:
        job.status = "unknown_contig"
        return
    start0 = job.pos - 1
    if start0 < 0 or start0 + len(job.ref) > genome.contigs[job.chrom]:
        job.status = "out_of_range"
        return
    reference = genome.fetch(job.chrom, start0, start0 + len(job.ref)).upper()
    if "N" in reference:
        job.status = "n_region"  # the genome does not know the bases the variant changes
        return
    if reference != job.ref.upper():
        job.status = "ref_mismatch"
        return
    left_start = start0 - window // 2
    left = genome.fetch(job.chrom, left_start, start0, pad=True)
    job.ref_window = genome.fetch(job.chrom, left_start, left_start + window, pad=True)
    right = window - len(left) - len(job.alt)  # >= 0: the ALT fits (checked above)
    after = start0 + len(job.ref)
    job.alt_window = left + job.alt + genome.fetch(job.chrom, after, after + right, pad=True)
