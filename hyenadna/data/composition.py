"""GC content, and negatives drawn to match the positives' GC content.

Why: a classifier learns whatever separates its classes, and base composition is the cheapest
thing to learn. Splice sites border GC-rich exons while random GT/AG dinucleotides inside genes
sit mostly in AT-rich introns; promoters are CpG-rich while gene bodies are not. A model that
learns "GC-rich means positive" scores well where the training mix holds and fails on a region
that is GC-rich throughout (chr20's last tenth, the test stretch of the task suite). Negatives
drawn with the positives' GC histogram take that shortcut away, as gReLU's GC-matched intervals
and gkm-SVM's null sequences do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hyenadna.errors import HyenaDNAError

MAX_CELLS = 1_000_000  # bins ** parts: the histograms are dense arrays


def gc_content(seq: str) -> float:
    """G and C (either case) over the A, C, G and T of ``seq``; N and other codes count for
    neither. A sequence without a single A, C, G or T is refused, naming its length."""
    upper = seq.upper()
    gc = upper.count("G") + upper.count("C")
    known = gc + upper.count("A") + upper.count("T")
    if not known:
        raise HyenaDNAError(f"a sequence of {len(seq)} characters has no A, C, G or T: its GC content is undefined")
    return gc / known


def split_parts(seq: str, parts: int) -> list[str]:
    """``seq`` cut into ``parts`` pieces of ``len(seq) // parts`` bases, the last taking the rest;
    a sequence shorter than ``parts`` is refused, naming both."""
    if parts < 1:
        raise HyenaDNAError(f"parts must be at least 1, got {parts}")
    if len(seq) < parts:
        raise HyenaDNAError(f"a sequence of {len(seq)} characters cannot be cut into {parts} parts")
    size = len(seq) // parts
    return [seq[i * size : (i + 1) * size if i < parts - 1 else len(seq)] for i in range(parts)]


def gc_matched(
    candidates: Sequence[str],
    reference: Sequence[str],
    n: int | None = None,
    bins: int = 20,
    seed: int = 0,
    parts: int = 1,
) -> np.ndarray:
    """Indices of ``n`` candidates (default: as many as ``reference``) whose GC histogram, in
    ``bins`` equal bins over [0, 1], is the reference's scaled to ``n`` (largest remainders
    round it), drawn at random without replacement within each bin; sorted.

    ``parts`` > 1 matches composition by position: each sequence is cut into that many equal
    parts (the last takes the remainder) and the histogram is the joint one over the parts' GC,
    ``bins ** parts`` cells. With ``parts=2`` a splice site's exon side and intron side are
    matched each, not only their mean. A part without A, C, G or T is refused like a sequence.

    A bin with fewer candidates than it needs is an error naming the bin and both counts: a
    histogram filled where it can be would no longer match, which is the point. So is a
    candidate or reference without a single A, C, G or T (:func:`gc_content`): filter them first.
    """
    if bins < 1:
        raise HyenaDNAError(f"bins must be at least 1, got {bins}")
    if parts < 1:
        raise HyenaDNAError(f"parts must be at least 1, got {parts}")
    cells = bins**parts
    if cells > MAX_CELLS:
        raise HyenaDNAError(f"{bins} bins over {parts} parts make {cells:,} cells (at most {MAX_CELLS:,})")
    if len(reference) == 0:
        raise HyenaDNAError("GC matching needs at least one reference sequence")
    n = len(reference) if n is None else n
    if n < 0:
        raise HyenaDNAError(f"n must be at least 0, got {n}")

    def part_gc(seqs: Sequence[str], which: str) -> list[list[float]]:
        out = []
        for i, seq in enumerate(seqs):
            try:
                out.append([gc_content(part) for part in split_parts(seq, parts)])
            except HyenaDNAError as err:
                where = f"{which} {i}" + (f" (cut into {parts} parts)" if parts > 1 else "")
                raise HyenaDNAError(f"{where}: {err}") from None
        return out

    def bin_of(seqs: Sequence[str], which: str) -> np.ndarray:
        gc = np.array(part_gc(seqs, which), dtype=float)
        per_part = np.minimum((gc * bins).astype(int), bins - 1).reshape(len(seqs), parts)
        return per_part @ bins ** np.arange(parts - 1, -1, -1)  # the first part is the leading digit

    ref_counts = np.bincount(bin_of(reference, "reference"), minlength=cells)
    exact = ref_counts * n / ref_counts.sum()
    wanted = np.floor(exact).astype(int)
    wanted[np.argsort(-(exact - wanted), kind="stable")[: n - wanted.sum()]] += 1
    cand_bins = bin_of(candidates, "candidate")
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for b in np.flatnonzero(wanted):
        pool = np.flatnonzero(cand_bins == b)
        if len(pool) < wanted[b]:
            digits = [(b // bins**p) % bins for p in range(parts - 1, -1, -1)]
            where = " x ".join(f"[{d / bins:.2f}, {(d + 1) / bins:.2f}{']' if d == bins - 1 else ')'}" for d in digits)
            raise HyenaDNAError(
                f"GC bin {where}{' (one range per part)' if parts > 1 else ''} needs {wanted[b]} "
                f"candidates and has {len(pool)}: "
                "draw more candidates or use fewer bins"
            )
        chosen.append(rng.choice(pool, size=wanted[b], replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)
