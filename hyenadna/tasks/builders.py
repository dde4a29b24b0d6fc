"""Builders of the task suite's labelled sets from real files installed on the machine.

Each builder returns :class:`TaskRow` records (name, sequence, label, split); :mod:`hyenadna.tasks`
writes them with their provenance. Every random choice comes from a seeded generator, so a
rebuild from the same files gives the same bytes.

* ``splice_chr20``: donor / acceptor / neither, 200-base windows centred on the exon-intron
  boundary in transcript orientation; "neither" windows are GT or AG dinucleotides at the same
  place inside genes that are not annotated sites, so the dinucleotide alone decides nothing.
* ``promoters_chr20``: 250 bases (-200..+50 around the transcription start, strand-aware)
  against 250-base windows from gene bodies (on the gene's strand) and intergenic sequence.
* ``tf_oct4_mafk``: the bundled Oct4 / MafK ChIP-seq peaks, re-split by chromosome.
* ``bacteria4``: which of four bacterial genomes (E. coli, H. pylori, S. aureus, V. cholerae)
  a 200-base window comes from, split by genome region.

``genic_chr20`` and ``elements_chr20``, which label stretches of chr20 by where they lie among
the genes, are built in :mod:`hyenadna.tasks.gene_regions`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyenadna.data.fasta import read_fasta
from hyenadna.data.genome import Genome
from hyenadna.data.tokenizer import reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.tasks.annotation import Gene, RegionSplit

GENOME_FRACTIONS = (0.1, 0.1)
"""Validation and test shares of a genome laid end to end (the end of it: test last)."""


@dataclass(frozen=True)
class TaskRow:
    name: str
    sequence: str
    label: str
    split: str


@dataclass(frozen=True)
class RegionRow:
    """A labelled position (``contig:start-end``, 0-based, end exclusive) whose sequence is read
    from the genome at fine-tuning time, at whatever context the recipe asks for."""

    name: str
    contig: str
    start: int
    end: int
    label: str
    split: str


def _clean(seq: str) -> bool:
    return not (set(seq.upper()) - set("ACGT"))


def _oriented(genome: Genome, chrom: str, start: int, end: int, strand: str) -> str:
    seq = genome.fetch(chrom, start, end).upper()
    return seq if strand == "+" else reverse_complement(seq)


def _site_window(genome: Genome, gene: Gene, boundary: int, half: int) -> str:
    """``2 * half`` bases around a boundary (between two bases), in transcript orientation: the
    boundary falls between bases ``half - 1`` and ``half`` whichever the strand."""
    return _oriented(genome, gene.chrom, boundary - half, boundary + half, gene.strand)


def _gene_splits(genes: Iterable[Gene], regions: RegionSplit, margin: int) -> dict[str, list[Gene]]:
    out: dict[str, list[Gene]] = {"train": [], "val": [], "test": []}
    for gene in genes:
        split = regions.of_span(gene.tx_start - margin, gene.tx_end + margin)
        if split:
            out[split].append(gene)
    return out


def splice_sites(
    genome: Genome, genes: list[Gene], regions: RegionSplit, half: int = 100, seed: int = 0, decoy_exclusion: int = 20
) -> list[TaskRow]:
    """Donor, acceptor and neither windows; one "neither" per real site, half GT and half AG decoys."""
    rng = np.random.default_rng(seed)
    rows: list[TaskRow] = []
    for split, split_genes in _gene_splits(genes, regions, half).items():
        decoy_budget = 0
        sites: set[int] = set()
        taken: set[tuple[int, str]] = set()
        for gene in split_genes:
            for label, boundaries in (("donor", gene.donors()), ("acceptor", gene.acceptors())):
                for b in boundaries:
                    sites.add(b)
                    if (b, gene.strand) in taken:  # a site shared by overlapping genes counts once
                        continue
                    taken.add((b, gene.strand))
                    seq = _site_window(genome, gene, b, half)
                    if _clean(seq):
                        rows.append(TaskRow(f"{gene.name}:{gene.chrom}:{b}:{gene.strand}", seq, label, split))
                        decoy_budget += 1
        rows += _splice_decoys(genome, split_genes, sorted(sites), split, decoy_budget, half, rng, decoy_exclusion)
    return rows


def splice_decoy_pool(
    genome: Genome,
    genes: list[Gene],
    regions: RegionSplit,
    split: str,
    count: int,
    half: int = 100,
    seed: int = 0,
    decoy_exclusion: int = 20,
) -> list[TaskRow]:
    """``count`` "neither" windows of one split, half GT and half AG, drawn as :func:`splice_sites`
    draws its decoys (inside the split's genes, ``decoy_exclusion`` bases or more from every real
    site): a pool to choose other decoys from, say GC-matched ones
    (:func:`hyenadna.data.composition.gc_matched`)."""
    split_genes = _gene_splits(genes, regions, half)[split]
    sites = sorted({b for gene in split_genes for b in (*gene.donors(), *gene.acceptors())})
    return _splice_decoys(genome, split_genes, sites, split, count, half, np.random.default_rng(seed), decoy_exclusion)


def _splice_decoys(genome, genes, sites, split, count, half, rng, exclusion) -> list[TaskRow]:
    """GT (donor-like) and AG (acceptor-like) boundaries inside genes, away from real sites."""
    rows: list[TaskRow] = []
    if not genes or count == 0:
        return rows
    spans = np.array([g.tx_end - g.tx_start for g in genes], dtype=float)
    wanted = {"GT": (count + 1) // 2, "AG": count // 2}
    seen: set[tuple[int, str]] = set()
    attempts = 0
    while any(wanted.values()):
        attempts += 1
        if attempts > 200 * count:
            raise HyenaDNAError(f"could not draw {count} splice decoys in the {split} genes")
        gene = genes[int(rng.choice(len(genes), p=spans / spans.sum()))]
        if gene.tx_end - gene.tx_start <= 2 * half:
            continue
        b = int(rng.integers(gene.tx_start + half, gene.tx_end - half))
        if (b, gene.strand) in seen:
            continue
        i = bisect.bisect_left(sites, b - exclusion)
        if i < len(sites) and sites[i] <= b + exclusion:
            continue
        seq = _site_window(genome, gene, b, half)
        kind = "GT" if seq[half : half + 2] == "GT" else "AG" if seq[half - 2 : half] == "AG" else None
        if kind is None or not wanted[kind] or not _clean(seq):
            continue
        seen.add((b, gene.strand))
        wanted[kind] -= 1
        rows.append(TaskRow(f"{gene.name}:{gene.chrom}:{b}:{gene.strand}:{kind}", seq, "neither", split))
    return rows


def promoters(
    genome: Genome, genes: list[Gene], regions: RegionSplit, upstream: int = 200, downstream: int = 50, seed: int = 0,
    min_tss_distance: int = 2000,
) -> list[TaskRow]:  # fmt: skip
    """Promoter windows and as many non-promoter windows: half from gene bodies on the gene's
    strand, half intergenic on a random strand, all at least ``min_tss_distance`` from any TSS."""
    rng = np.random.default_rng(seed)
    width = upstream + downstream
    chrom = genes[0].chrom if genes else ""
    tss_all = sorted(g.tss for g in genes)
    gene_spans = sorted((g.tx_start, g.tx_end) for g in genes)
    rows: list[TaskRow] = []
    for split, split_genes in _gene_splits(genes, regions, max(upstream, downstream)).items():
        n = 0
        for gene in split_genes:
            if gene.strand == "+":
                start, end = gene.tss - upstream, gene.tss + downstream
            else:
                start, end = gene.tss + 1 - downstream, gene.tss + 1 + upstream
            seq = _oriented(genome, gene.chrom, start, end, gene.strand)
            if _clean(seq):
                rows.append(TaskRow(f"{gene.name}:{gene.chrom}:{gene.tss}:{gene.strand}", seq, "promoter", split))
                n += 1
        lo, hi = {"train": (0, regions.val_start), "val": (regions.val_start, regions.test_start),
                  "test": (regions.test_start, regions.length)}[split]  # fmt: skip
        rows += _background(genome, chrom, split_genes, gene_spans, tss_all, (lo, hi), n, width, min_tss_distance,
                            split, rng)  # fmt: skip
    return rows


def _near(sorted_points: list[int], x: int, distance: int) -> bool:
    i = bisect.bisect_left(sorted_points, x - distance)
    return i < len(sorted_points) and sorted_points[i] <= x + distance


def _in_gene(spans: list[tuple[int, int]], start: int, end: int, margin: int) -> bool:
    return any(s - margin < end and start < e + margin for s, e in spans)


def _background(genome, chrom, genes, spans, tss, region, count, width, min_tss_distance, split, rng) -> list[TaskRow]:
    rows: list[TaskRow] = []
    wanted = {"genic": (count + 1) // 2, "intergenic": count // 2}
    attempts = 0
    while any(wanted.values()):
        attempts += 1
        if attempts > 1000 * max(count, 1):
            raise HyenaDNAError(f"could not draw {count} background windows in the {split} region")
        kind = "genic" if wanted["genic"] and (not wanted["intergenic"] or rng.random() < 0.5) else "intergenic"
        if kind == "genic":
            gene = genes[int(rng.integers(len(genes)))]
            if gene.tx_end - gene.tx_start <= width:
                continue
            start, strand = int(rng.integers(gene.tx_start, gene.tx_end - width)), gene.strand
        else:
            start, strand = int(rng.integers(region[0], region[1] - width)), "+-"[int(rng.integers(2))]
            if _in_gene(spans, start, start + width, min_tss_distance):
                continue
        if _near(tss, start + width // 2, min_tss_distance):
            continue
        seq = _oriented(genome, chrom, start, start + width, strand)
        if not _clean(seq):
            continue
        wanted[kind] -= 1
        rows.append(TaskRow(f"{kind}:{chrom}:{start}:{strand}", seq, "background", split))
    return rows


def tf_binding_by_chromosome(
    class_files: dict[str, list[str | Path]], val_chroms: Iterable[str], test_chroms: Iterable[str]
) -> list[TaskRow]:
    """Labelled peaks (FASTA headers ``chrN:start-end``) split by the chromosome in the header."""
    val_chroms, test_chroms = set(val_chroms), set(test_chroms)
    rows, seen = [], set()
    for label, paths in class_files.items():
        for path in paths:
            for header, seq in read_fasta(path):
                chrom = header.split(":", 1)[0]
                if ":" not in header:
                    raise HyenaDNAError(f"{path}: header {header!r} is not chrom:start-end")
                if (label, header) in seen:
                    continue
                seen.add((label, header))
                split = "test" if chrom in test_chroms else "val" if chrom in val_chroms else "train"
                rows.append(TaskRow(f"{label}:{header}", seq.upper(), label, split))
    return rows


def genome_windows(
    genomes: dict[str, str | Path], per_split: dict[str, int], width: int = 200, seed: int = 0,
    fractions: tuple[float, float] = GENOME_FRACTIONS,
) -> list[TaskRow]:  # fmt: skip
    """Windows labelled by the genome they come from; each genome's contigs are laid end to end
    and cut by position into train / val / test (the last ``fractions[1]`` test, the
    ``fractions[0]`` before it val), so no window of one split overlaps another's."""
    rng = np.random.default_rng(seed)
    rows: list[TaskRow] = []
    for label, path in genomes.items():
        seq = "".join(s for _, s in read_fasta(path)).upper()
        regions = RegionSplit.by_fraction(len(seq), *fractions)
        for split, n in per_split.items():
            lo, hi = regions.bounds(split)
            starts: set[int] = set()
            for _ in _bounded(100 * n, f"{path}: too few clean {width}-base windows in {split}"):
                if len(starts) == n:
                    break
                start = int(rng.integers(lo, hi - width))
                if start not in starts and _clean(seq[start : start + width]):
                    starts.add(start)
            strands = rng.integers(2, size=n)
            for start, flip in zip(sorted(starts), strands):
                window = seq[start : start + width]
                rows.append(TaskRow(f"{label}:{start}", reverse_complement(window) if flip else window, label, split))
    return rows


def genome_split_stretches(
    genomes: dict[str, str | Path], split: str, fractions: tuple[float, float] = GENOME_FRACTIONS,
) -> Iterator[tuple[str, str, str]]:  # fmt: skip
    """``(label, name, sequence)`` for every stretch of a genome's contigs that lies in ``split``
    of :func:`genome_windows` (the same fractions of the contigs laid end to end), named
    ``contig:start-end`` (0-based, end exclusive). This is what a model may be pretrained on
    before fine-tuning on the task without seeing a base of the other splits."""
    for label, path in genomes.items():
        records = [(name, seq.upper()) for name, seq in read_fasta(path)]
        lo, hi = RegionSplit.by_fraction(sum(len(seq) for _, seq in records), *fractions).bounds(split)
        offset = 0
        for name, seq in records:
            start, end = max(lo, offset) - offset, min(hi, offset + len(seq)) - offset
            if start < end:
                yield label, f"{name}:{start}-{end}", seq[start:end]
            offset += len(seq)


def at_most_per_label(rows: list[TaskRow], split: str, limit: int, seed: int = 0) -> list[TaskRow]:
    """Keep a seeded random ``limit`` rows of each label in ``split`` (others untouched, order kept)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.split == split:
            by_label.setdefault(r.label, []).append(i)
    drop: set[int] = set()
    for indices in by_label.values():
        if len(indices) > limit:
            drop.update(int(i) for i in rng.choice(indices, size=len(indices) - limit, replace=False))
    return [r for i, r in enumerate(rows) if i not in drop]


def _bounded(limit: int, message: str) -> Iterator[int]:
    yield from range(limit)
    raise HyenaDNAError(message)
