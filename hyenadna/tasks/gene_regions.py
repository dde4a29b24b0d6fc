"""Tasks that label stretches of human chr20 by where they lie among its genes.

* ``genic_chr20``: whether a position lies in a gene body or between genes, as
  :class:`RegionRow` centres rather than sequences: the same centres are read at any context up
  to ``max_context`` (32 kb), so a curve of accuracy against context compares like with like.
* ``elements_chr20``: whether a 200-base window (random strand) is centred on an exon, lies
  inside an intron, or lies between genes: many short windows of three classes, the kind of task
  a user brings to ``hyenadna tune`` with no recipe of its own.

Both draw from a seeded generator, so a rebuild from the same files gives the same bytes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from itertools import pairwise

import numpy as np

from hyenadna.data.genome import Genome
from hyenadna.errors import HyenaDNAError
from hyenadna.tasks.annotation import Gene, RegionSplit
from hyenadna.tasks.builders import RegionRow, TaskRow, _bounded, _clean, _gene_splits, _in_gene, _near, _oriented


def gene_body_centres(
    genome: Genome, genes: list[Gene], regions: RegionSplit, per_label: dict[str, int], max_context: int = 32768,
    boundary_gap: int = 2000, max_n_fraction: float = 0.01, seed: int = 0,
) -> list[RegionRow]:  # fmt: skip
    """Positions labelled ``gene`` (inside a transcript of any strand) or ``intergenic`` (outside
    every transcript), ``per_label[split]`` of each per split.

    A position is kept only if the ``max_context`` bases around it lie wholly in its split's
    region (so no base of a test window is in a training window, at any context up to that) with
    at most ``max_n_fraction`` N, and it is at least ``boundary_gap`` bases from every transcript
    start and end: the label is then not written in the bases next to the centre (a promoter, a
    polyadenylation signal), and a short window has to tell a gene body by its own sequence.
    """
    if not genes:
        raise HyenaDNAError("gene_body_centres: no genes")
    chrom = genes[0].chrom
    spans = sorted((g.tx_start, g.tx_end) for g in genes)
    ends = sorted(x for span in spans for x in span)
    rng = np.random.default_rng(seed)
    half = max_context // 2
    rows: list[RegionRow] = []
    for split, n in per_label.items():
        lo, hi = regions.bounds(split)
        wanted = {"gene": n, "intergenic": n}
        taken: dict[int, str] = {}
        message = f"{chrom}: fewer than {n} clean {max_context}-base windows of each label in the {split} region"
        for _ in _bounded(1000 * n, message):
            if not any(wanted.values()):
                break
            centre = int(rng.integers(lo + half, hi - half))
            if centre in taken or _near(ends, centre, boundary_gap):
                continue
            label = "gene" if _in_gene(spans, centre, centre + 1, 0) else "intergenic"
            if not wanted[label]:
                continue
            window = genome.fetch(chrom, centre - half, centre + half).upper()
            if window.count("N") > max_n_fraction * len(window) or window[half] == "N":
                continue
            taken[centre] = label
            wanted[label] -= 1
        rows += [RegionRow(f"{label}:{chrom}:{c}", chrom, c, c + 1, label, split) for c, label in sorted(taken.items())]
    return rows


def genomic_elements(
    genome: Genome, genes: list[Gene], regions: RegionSplit, per_label: dict[str, int], width: int = 200,
    splice_margin: int = 50, intergenic_gap: int = 2000, seed: int = 0,
) -> list[TaskRow]:  # fmt: skip
    """``exon``, ``intron`` and ``intergenic`` windows of ``width`` bases, each on a random strand
    (so the strand of transcription decides nothing), the same number of each label per split:
    ``per_label[split]``, or fewer when the split's genes hold fewer exons.

    * ``exon``: centred on the middle of an annotated exon (a short exon's window takes in its
      flanks, as a read of it would);
    * ``intron``: wholly inside an intron with more than ``splice_margin`` bases between it and
      every exon of any gene, so no splice site is in it; non-overlapping slots of the split's
      introns;
    * ``intergenic``: at least ``intergenic_gap`` bases from every transcript.

    Genes are assigned to a split only when they lie wholly in its region (with a window's margin),
    so no window of one split overlaps another's. Within a split, windows may share bases: those
    of neighbouring exons, and an exon's with an intron window where the exon is short.
    """
    if not genes:
        raise HyenaDNAError("genomic_elements: no genes")
    chrom = genes[0].chrom
    rng = np.random.default_rng(seed)
    spans = sorted((g.tx_start, g.tx_end) for g in genes)
    exon_starts, exon_ends = _merged(exon for g in genes for exon in g.exons)
    rows: list[TaskRow] = []

    def add(label: str, starts: Iterable[int], split: str) -> None:
        for start in sorted(starts):
            strand = "+-"[int(rng.integers(2))]
            seq = _oriented(genome, chrom, start, start + width, strand)
            rows.append(TaskRow(f"{label}:{chrom}:{start}:{strand}", seq, label, split))

    def clean(start: int) -> bool:
        return _clean(genome.fetch(chrom, start, start + width))

    for split, split_genes in _gene_splits(genes, regions, width).items():
        if split not in per_label:
            continue
        exons = sorted({(s + e) // 2 - width // 2 for g in split_genes for s, e in g.exons})
        exons = [start for start in exons if clean(start)]
        n = min(per_label[split], len(exons))
        # slots step through each intron from splice_margin past its exon; the two end slots sit
        # exactly splice_margin from an exon and fail the "more than" test below, so are never drawn
        slots = [
            start
            for g in split_genes
            for (_, a), (b, _) in pairwise(g.exons)
            for start in range(a + splice_margin, b - splice_margin - width + 1, width)
        ]
        introns: list[int] = []
        for slot in rng.permutation(len(slots)):
            if len(introns) == n:
                break
            start = slots[int(slot)]
            # the last merged exon starting by the margin's end past the window: the only one that
            # can reach back into it (merged spans are disjoint, so their ends rise with their starts)
            last = bisect.bisect_right(exon_starts, start + width + splice_margin) - 1
            near_exon = last >= 0 and exon_ends[last] >= start - splice_margin
            if not near_exon and clean(start):
                introns.append(start)
        if len(introns) < n:
            raise HyenaDNAError(f"{chrom}: only {len(introns)} clean intron windows in the {split} region, {n} wanted")
        lo, hi = regions.bounds(split)
        intergenic: set[int] = set()
        for _ in _bounded(1000 * max(n, 1), f"{chrom}: fewer than {n} clean intergenic windows in the {split} region"):
            if len(intergenic) == n:
                break
            start = int(rng.integers(lo, hi - width))
            if not _in_gene(spans, start, start + width, intergenic_gap) and clean(start):
                intergenic.add(start)
        add("exon", (exons[int(i)] for i in rng.choice(len(exons), size=n, replace=False)), split)
        add("intron", introns, split)
        add("intergenic", intergenic, split)
    return rows


def _merged(spans: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Half-open spans merged where they overlap: sorted starts and their ends, so that one
    bisection finds the only span that can hold a position (exons of different genes overlap)."""
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(spans):
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends
