"""Motifs from attributions: seqlets, their clustering into patterns, and matching against JASPAR.

What a model learnt is read off its attributions over many sequences (the idea of TF-MoDISco,
Shrikumar et al. 2018, here in a small form that needs no numba or graph-clustering libraries):

1. **Seqlets.** A position's importance is the sum of its attributions over the four bases (for
   gradient x input, the sequence's own base). Windows of ``core`` bases are summed along each
   sequence; the strongest windows above a threshold (a high quantile of all window sums) become
   seqlets, at most ``per_sequence`` per sequence and never overlapping, cut with ``flank`` bases
   each side and ``max_shift`` more for alignment.
2. **Patterns.** Seqlets are taken strongest first; each joins the pattern whose contribution
   matrix it matches best (cosine similarity of the contribution matrices, over shifts of up to
   ``max_shift`` bases and both strands) when that similarity reaches ``min_similarity``, or starts
   a pattern of its own. A second pass reassigns every seqlet to the finished patterns, so early
   seqlets are not stuck with an unfinished centroid. Patterns with fewer than ``min_seqlets``
   seqlets are dropped.
3. **Matrices.** Each pattern gives a contribution-weight matrix (CWM, the mean aligned
   contributions) and a position probability matrix (PPM, the aligned bases' frequencies),
   trimmed to the columns whose contribution reaches ``trim`` x the strongest column's (widened
   to ``min_width`` columns where fewer reach it: two or three columns match anything).
4. **Matching** (Tomtom's column comparison, Gupta et al. 2007): a pattern's PPM against each
   JASPAR matrix on both strands and every offset, scored by the Pearson correlations of the
   aligned columns summed and divided by the pattern's width (1: every column matched exactly;
   columns hanging over the matrix's end count 0).

JASPAR matrices are read from the JASPAR flat format (``>MA0496.1 MAFK`` then ``A [ ... ]`` rows)
or the tab-separated count rows of the pscan ``.wil`` files (``pscan-chip-data``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyenadna.checks import values as validate
from hyenadna.errors import HyenaDNAError

BASES = "ACGT"


@dataclass
class Seqlet:
    """A stretch of one sequence that drives the output: ``start`` .. ``end`` (0-based,
    half-open, the core with its flanks) in sequence ``index``; ``score`` is its core's summed
    attribution."""

    index: int
    start: int
    end: int
    score: float


@dataclass
class Pattern:
    """A recurring seqlet shape: its seqlets (with the shift and strand that aligned each), the
    trimmed CWM and PPM (W, 4), and the best JASPAR matches once matched."""

    seqlets: list[Seqlet]
    cwm: np.ndarray
    ppm: np.ndarray
    matches: list[dict] = field(default_factory=list)

    @property
    def consensus(self) -> str:
        """The most frequent base of each PPM column, lowercase where under half the seqlets agree."""
        return "".join(BASES[j] if p[j] >= 0.5 else BASES[j].lower() for p in self.ppm for j in [int(np.argmax(p))])


@dataclass
class JasparMatrix:
    """One JASPAR matrix: its id, TF name and counts (W, 4)."""

    id: str
    name: str
    counts: np.ndarray

    def ppm(self, pseudocount: float = 0.01) -> np.ndarray:
        counts = self.counts + pseudocount * self.counts.sum(1, keepdims=True).clip(min=1)
        return counts / counts.sum(1, keepdims=True)


def onehot(sequence: str) -> np.ndarray:
    """(L, 4) float one-hot of A/C/G/T; other letters are zero rows."""
    codes = np.frombuffer(sequence.upper().encode(), dtype=np.uint8)
    table = np.full(256, -1)
    for j, base in enumerate(BASES):
        table[ord(base)] = j
    index = table[codes]
    out = np.zeros((len(sequence), 4))
    out[np.flatnonzero(index >= 0), index[index >= 0]] = 1
    return out


def find_seqlets(
    attributions: list[np.ndarray],
    core: int = 10,
    flank: int = 5,
    per_sequence: int = 2,
    quantile: float = 0.99,
    max_shift: int = 4,
) -> list[Seqlet]:
    """Seqlets of step 1 of the module docstring from per-sequence attributions (L_i, 4)."""
    sums = []
    for scores in attributions:
        importance = np.asarray(scores, dtype=np.float64).sum(-1)
        window = np.convolve(importance, np.ones(core), mode="valid") if len(importance) >= core else np.zeros(0)
        sums.append(window)
    pooled = np.concatenate([s for s in sums if len(s)]) if any(len(s) for s in sums) else np.zeros(0)
    if not len(pooled):
        return []
    threshold = max(float(np.quantile(pooled, quantile)), 0.0)
    margin = flank + max_shift
    seqlets = []
    for index, window in enumerate(sums):
        window = window.copy()
        for _ in range(per_sequence):
            if not len(window):
                break
            best = int(np.argmax(window))
            if window[best] <= threshold:
                break
            start, end = best - margin, best + core + margin
            if start >= 0 and end <= len(attributions[index]):
                seqlets.append(Seqlet(index, best - flank, best + core + flank, float(window[best])))
            window[max(0, best - core) : best + core] = -np.inf  # no overlapping cores
    return sorted(seqlets, key=lambda s: -s.score)


def _aligned(matrix: np.ndarray, shift: int, reverse: bool, width: int, margin: int) -> np.ndarray:
    """The ``width`` columns of a seqlet's matrix (cut with ``margin`` extra columns each side)
    at ``shift`` from its centre, reverse-complemented first when ``reverse``."""
    if reverse:
        matrix = matrix[::-1, ::-1]
    return matrix[margin + shift : margin + shift + width]


def _views(matrix: np.ndarray, width: int, margin: int) -> tuple[np.ndarray, list[tuple[int, bool]]]:
    """Every shift and strand of a seqlet's matrix, unit-normalised (V, width, 4), and what each is."""
    keys = [(shift, reverse) for reverse in (False, True) for shift in range(-margin, margin + 1)]
    views = np.stack([_aligned(matrix, shift, reverse, width, margin) for shift, reverse in keys])
    norms = np.linalg.norm(views.reshape(len(keys), -1), axis=1)
    return views / np.where(norms > 0, norms, 1)[:, None, None], keys


def _best_alignments(centroids: np.ndarray, matrix: np.ndarray, margin: int) -> tuple[np.ndarray, list]:
    """For each centroid (K, W, 4): the cosine similarity of the seqlet's best shift and strand,
    and that (shift, reverse)."""
    views, keys = _views(matrix, centroids.shape[1], margin)
    norms = np.linalg.norm(centroids.reshape(len(centroids), -1), axis=1)
    similarity = np.einsum("vwb,kwb->vk", views, centroids) / np.where(norms > 0, norms, 1)
    best = similarity.argmax(0)
    return similarity[best, np.arange(len(centroids))], [keys[v] for v in best]


def cluster_seqlets(
    seqlets: list[Seqlet],
    sequences: list[str],
    attributions: list[np.ndarray],
    max_shift: int = 4,
    min_similarity: float = 0.6,
    min_seqlets: int = 10,
    trim: float = 0.3,
    min_width: int = 8,
) -> list[Pattern]:
    """Patterns of steps 2 and 3 of the module docstring, the most seqlets first."""
    if not seqlets:
        return []
    width = seqlets[0].end - seqlets[0].start
    contrib, bases = [], []
    for s in seqlets:
        lo, hi = s.start - max_shift, s.end + max_shift
        contrib.append(np.asarray(attributions[s.index][lo:hi], dtype=np.float64))
        bases.append(onehot(sequences[s.index][lo:hi]))
    centroids = np.zeros((0, width, 4))
    for matrix in contrib:  # pass 1: leaders
        if len(centroids):
            similarity, keys = _best_alignments(centroids, matrix, max_shift)
            k = int(np.argmax(similarity))
            if similarity[k] >= min_similarity:
                centroids[k] += _aligned(matrix, *keys[k], width, max_shift)
                continue
        centroids = np.concatenate([centroids, _aligned(matrix, 0, False, width, max_shift)[None]])
    members: list[list[tuple[int, int, bool]]] = [[] for _ in centroids]
    for i, matrix in enumerate(contrib):  # pass 2: every seqlet against the finished centroids
        similarity, keys = _best_alignments(centroids, matrix, max_shift)
        k = int(np.argmax(similarity))
        if similarity[k] >= min_similarity:
            members[k].append((i, *keys[k]))
    patterns = []
    for group in members:
        if len(group) < min_seqlets:
            continue
        cwm = np.mean([_aligned(contrib[i], sh, rev, width, max_shift) for i, sh, rev in group], axis=0)
        counts = np.sum([_aligned(bases[i], sh, rev, width, max_shift) for i, sh, rev in group], axis=0)
        strength = np.abs(cwm.sum(1))
        keep = np.flatnonzero(strength >= trim * strength.max())
        lo, hi = int(keep[0]), int(keep[-1]) + 1
        while hi - lo < min(min_width, width):  # too short to match anything meaningfully: widen evenly
            grow_left = lo > 0 and (hi >= width or strength[lo - 1] >= strength[hi])
            lo, hi = (lo - 1, hi) if grow_left else (lo, hi + 1)
        cut = slice(lo, hi)
        ppm = (counts[cut] + 0.01) / (counts[cut] + 0.01).sum(1, keepdims=True)
        patterns.append(Pattern([seqlets[i] for i, _, _ in group], cwm[cut], ppm))
    return sorted(patterns, key=lambda p: -len(p.seqlets))


def read_jaspar(path: str | os.PathLike) -> list[JasparMatrix]:
    """Matrices of a JASPAR flat file (``A [ 1 2 ... ]`` rows) or of a pscan ``.wil`` file
    (four rows of counts, A C G T, after each ``>ID NAME`` header), gzipped or not. Counts that
    no matrix can hold (NaN, infinite, negative, a column of zeros) are refused with the matrix
    named: they would match as garbage."""
    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"JASPAR file not found: {path}")
    matrices: list[JasparMatrix] = []
    header: tuple[str, str, int] | None = None  # id, name, line
    rows: list[list[float]] = []

    def finish(line_number: int) -> None:
        if header is None:
            return
        if len(rows) != 4 or len({len(r) for r in rows}) != 1 or not rows[0]:
            raise HyenaDNAError(f"{path}, line {line_number}: matrix {header[0]} does not have four rows of counts")
        counts = np.array(rows, dtype=np.float64).T
        problem = _bad_counts(counts)
        if problem:
            raise HyenaDNAError(f"{path}, line {header[2]}: matrix {header[0]} has {problem}")
        matrices.append(JasparMatrix(header[0], header[1], counts))

    lines = _read_text(path).splitlines()
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            finish(number)
            fields = line[1:].split(None, 1)
            if not fields:
                raise HyenaDNAError(f"{path}, line {number}: a '>' header without a matrix id")
            header, rows = (fields[0], fields[1].strip() if len(fields) > 1 else fields[0], number), []
            continue
        if header is None:
            raise HyenaDNAError(f"{path}, line {number}: counts before the first '>' header")
        text = line.replace("[", " ").replace("]", " ").split()
        if text and text[0] in BASES:
            text = text[1:]
        try:
            rows.append([float(v) for v in text])
        except ValueError:
            raise HyenaDNAError(f"{path}, line {number}: not a row of counts: {line[:60]!r}") from None
    finish(len(lines))
    if not matrices:
        raise HyenaDNAError(f"{path}: no matrices")
    return matrices


def _bad_counts(counts: np.ndarray) -> str | None:
    """What is wrong with a count matrix (W, 4), or None."""
    if not np.isfinite(counts).all():
        return "NaN or infinite counts"
    if (counts < 0).any():
        return "negative counts"
    empty = np.flatnonzero(counts.sum(1) <= 0)
    if len(empty):
        return f"no counts in column {int(empty[0]) + 1}"
    return None


def _read_text(path: Path) -> str:
    """A JASPAR file's text; a gzipped one (by its magic bytes, whatever its name) unpacked."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise HyenaDNAError(f"{path}: a damaged gzip file ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HyenaDNAError(f"{path}: not a text file of JASPAR matrices") from None


def _column_pcc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair of (n, 4) matrices; 0 for a flat column."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    denominator = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(denominator > 0, (a * b).sum(1) / np.where(denominator > 0, denominator, 1), 0.0)


def match_score(query: np.ndarray, target: np.ndarray) -> tuple[float, int, str]:
    """Best (score, offset, strand) of a PPM ``query`` (W, 4) against ``target`` (step 4 of the
    module docstring); offset is where the query's first column sits on the target's."""
    best = (-np.inf, 0, "+")
    width, length = query.shape[0], target.shape[0]
    for strand, q in (("+", query), ("-", query[::-1, ::-1])):
        for offset in range(-width + 1, length):
            lo, hi = max(0, offset), min(length, offset + width)
            if hi - lo < min(4, width, length):
                continue
            score = float(_column_pcc(q[lo - offset : hi - offset], target[lo:hi]).sum() / width)
            if score > best[0]:
                best = (score, offset, strand)
    return best


def match_patterns(patterns: list[Pattern], database: list[JasparMatrix], top: int = 5) -> None:
    """Fill each pattern's ``matches`` with its ``top`` JASPAR matrices, best first."""
    ppms = [(m, m.ppm()) for m in database]
    for pattern in patterns:
        scored = []
        for matrix, ppm in ppms:
            score, offset, strand = match_score(pattern.ppm, ppm)
            scored.append({"id": matrix.id, "name": matrix.name, "score": round(score, 4), "offset": offset,
                           "strand": strand})  # fmt: skip
        pattern.matches = sorted(scored, key=lambda m: -m["score"])[:top]


def check_settings(
    core: int = 10,
    flank: int = 5,
    per_sequence: int = 2,
    quantile: float = 0.99,
    max_shift: int = 4,
    min_similarity: float = 0.6,
    min_seqlets: int = 10,
    trim: float = 0.3,
    top: int = 5,
) -> None:
    """Refuse settings outside their range (named as the ``motifs`` command's options), before
    any work: a window of 0 bases, a quantile of 1.5 or a negative flank have no meaning."""
    counts = {"--core": (core, 1), "--flank": (flank, 0), "--per_sequence": (per_sequence, 1),
              "--max_shift": (max_shift, 0), "--min_seqlets": (min_seqlets, 1), "--top": (top, 1)}  # fmt: skip
    for option, (value, low) in counts.items():
        validate.integer(option, value, low=low)
    validate.number("--quantile", quantile, 0.0, 1.0)
    validate.number("--min_similarity", min_similarity, -1.0, 1.0)
    validate.number("--trim", trim, 0.0, 1.0)


def discover_motifs(
    sequences: list[str],
    attributions: list[np.ndarray],
    database: list[JasparMatrix] | None = None,
    core: int = 10,
    flank: int = 5,
    per_sequence: int = 2,
    quantile: float = 0.99,
    max_shift: int = 4,
    min_similarity: float = 0.6,
    min_seqlets: int = 10,
    trim: float = 0.3,
    top: int = 5,
) -> list[Pattern]:
    """Seqlets, patterns and (with a ``database``) their JASPAR matches: the module docstring's
    steps 1-4 on sequences and their attributions (L_i, 4) toward one output."""
    check_settings(core, flank, per_sequence, quantile, max_shift, min_similarity, min_seqlets, trim, top)
    if len(sequences) != len(attributions):
        raise HyenaDNAError(f"{len(sequences)} sequences but {len(attributions)} attribution arrays")
    for i, (seq, scores) in enumerate(zip(sequences, attributions)):
        if np.shape(scores) != (len(seq), 4):
            raise HyenaDNAError(f"sequence {i}: attributions of shape {np.shape(scores)}, expected ({len(seq)}, 4)")
    seqlets = find_seqlets(attributions, core, flank, per_sequence, quantile, max_shift)
    patterns = cluster_seqlets(seqlets, sequences, attributions, max_shift, min_similarity, min_seqlets, trim)
    if database:
        match_patterns(patterns, database, top)
    return patterns
