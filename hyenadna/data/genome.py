"""Indexed random access to FASTA genomes (plain or bgzip), with index building and contig choice.

A :class:`Genome` wraps ``pysam.FastaFile`` (htslib's faidx), which fetches a 1 Mb slice of a
bgzipped chromosome in milliseconds. It is safe to hand to DataLoader workers: the file handle is
opened lazily in the process that uses it and is never pickled, so each worker reads through its
own handle (htslib handles must not be shared across a fork).

Indexes: a missing ``.fai`` (and ``.gzi`` for bgzip) is built beside the FASTA when that folder is
writable, otherwise in a cache folder (``$HYENADNA_CACHE`` or ``~/.cache/hyenadna``). A gzip file
that is not bgzip cannot be indexed; it is decompressed once into the cache folder instead.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from hyenadna.data.files import cache_dir, cache_slot, compression, decompress_to_cache
from hyenadna.errors import HyenaDNAError

SoftMaskPolicy = Literal["keep", "upper"]


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _build_index(fasta: Path, fai: Path, gzi: Path | None) -> None:
    """Build the faidx index (and bgzip index) into temporary names, renamed only when complete."""
    import pysam

    fai.parent.mkdir(parents=True, exist_ok=True)
    tmp_fai = fai.with_name(f".tmp-{os.getpid()}-{fai.name}")
    tmp_gzi = gzi.with_name(f".tmp-{os.getpid()}-{gzi.name}") if gzi else None
    args = [str(fasta), "--fai-idx", str(tmp_fai)]
    if tmp_gzi:
        args += ["--gzi-idx", str(tmp_gzi)]
    try:
        pysam.faidx(*args)
        _check_no_empty_records(fasta, tmp_fai)
        if tmp_gzi:
            os.replace(tmp_gzi, gzi)
        os.replace(tmp_fai, fai)
    except pysam.utils.SamtoolsError as exc:
        detail = " ".join(str(exc).split())
        raise HyenaDNAError(f"{fasta}: cannot index this FASTA file ({detail})") from None
    finally:
        tmp_fai.unlink(missing_ok=True)
        if tmp_gzi:
            tmp_gzi.unlink(missing_ok=True)


def _check_no_empty_records(fasta: Path, fai: Path) -> None:
    """faidx silently leaves out records with no sequence; count the headers to catch them.

    One pass over the file, done only when an index is built. Where the counts differ, the
    streaming reader finds the record and raises its error (file, line and record name).
    """
    with open(fai, "rb") as fh:
        indexed = sum(1 for line in fh if line.strip())
    opener = gzip.open if compression(fasta) != "plain" else open
    headers, last = 0, b"\n"
    with opener(fasta, "rb") as fh:
        while chunk := fh.read(1 << 24):
            headers += chunk.count(b"\n>") + (last == b"\n" and chunk[:1] == b">")
            last = chunk[-1:]
    if headers != indexed:
        from hyenadna.data.fasta import read_fasta_records

        for _ in read_fasta_records(fasta):
            pass
        raise HyenaDNAError(f"{fasta}: {headers} headers but {indexed} indexed records (duplicate names?)")


def stale_index(fasta: Path, fai: Path) -> str | None:
    """Why ``fai`` no longer describes ``fasta`` (None when it does): older than the FASTA, or,
    for a plain file, a record whose header or lines are not where the index puts them (an
    index trusted after its FASTA was edited reads every later record shifted)."""
    if fai.stat().st_mtime_ns < fasta.stat().st_mtime_ns:
        return "it is older than the FASTA"
    if compression(fasta) != "plain":
        return None
    size = fasta.stat().st_size
    with open(fai, "rb") as index, open(fasta, "rb") as fh:
        records = [line.split(b"\t") for line in index if line.strip()]
        step = max(1, len(records) // 500)  # at most about 500 records checked, evenly spread
        for fields in records[::step] + records[-1:]:
            try:
                name, length, offset, bases, width = fields[0], *(int(v) for v in fields[1:5])
            except ValueError:
                return "it is not a faidx index"
            end = offset + (length // bases) * width + length % bases if bases else offset
            fh.seek(max(0, offset - len(name) - 2 - 1024))
            before = fh.read(offset - fh.tell())
            header = before[before.rfind(b"\n>", 0, len(before) - 1) + 1 :] if b"\n>" in before else before
            if end > size or not before.endswith(b"\n") or not header.startswith(b">" + name):
                return f"record {name.decode(errors='replace')!r} is not where it says"
    return None


def _current(fasta: Path, fai: Path, gzi: Path | None) -> bool:
    """Whether an existing index can be used; a stale one is removed (it is rebuilt)."""
    if not fai.is_file() or (gzi is not None and not gzi.is_file()):
        return False
    reason = stale_index(fasta, fai)
    if reason is None:
        return True
    import warnings

    warnings.warn(f"{fai} does not match {fasta} ({reason}); rebuilding it", stacklevel=3)
    try:
        fai.unlink()
    except OSError as exc:
        raise HyenaDNAError(f"{fai} does not match {fasta} ({reason}) and cannot be removed ({exc})") from None
    return False


def _locate_index(fasta: Path, compressed: bool) -> tuple[Path, Path | None]:
    """Return (fai, gzi) paths that exist and match the FASTA, building them beside the file or
    in the cache (a stale index is rebuilt, see :func:`stale_index`)."""
    beside_fai = fasta.with_name(fasta.name + ".fai")
    beside_gzi = fasta.with_name(fasta.name + ".gzi") if compressed else None
    if _current(fasta, beside_fai, beside_gzi):
        return beside_fai, beside_gzi
    slot = cache_slot(fasta)
    cached_fai = slot / (fasta.name + ".fai")
    cached_gzi = slot / (fasta.name + ".gzi") if compressed else None
    if _current(fasta, cached_fai, cached_gzi):
        return cached_fai, cached_gzi
    if _writable(fasta.parent):
        _build_index(fasta, beside_fai, beside_gzi)
        return beside_fai, beside_gzi
    try:
        _build_index(fasta, cached_fai, cached_gzi)
    except OSError as exc:
        raise HyenaDNAError(
            f"{fasta}: no index, and neither its folder nor the cache {cache_dir()} is writable ({exc}); "
            f"run `samtools faidx {fasta}` or set HYENADNA_CACHE to a writable folder"
        ) from None
    return cached_fai, cached_gzi


class Genome:
    """A FASTA genome with random access by ``(contig, start, end)``, 0-based and half-open.

    Args:
        path: FASTA file, plain, bgzip (indexed or not) or plain gzip (decompressed to the cache).
        soft_mask: ``"keep"`` returns lowercase (repeat-masked) bases as they are in the file;
            ``"upper"`` upper-cases every fetched slice.
    """

    def __init__(self, path: str | os.PathLike, soft_mask: SoftMaskPolicy = "keep") -> None:
        self.path = Path(path)
        if soft_mask not in ("keep", "upper"):
            raise HyenaDNAError(f"soft_mask must be 'keep' or 'upper', got {soft_mask!r}")
        self.soft_mask = soft_mask
        if not self.path.is_file():
            raise HyenaDNAError(f"FASTA file not found: {self.path}")
        if self.path.stat().st_size == 0:
            raise HyenaDNAError(f"{self.path}: empty file, no FASTA records")
        kind = compression(self.path)
        self._data = decompress_to_cache(self.path) if kind == "gzip" else self.path
        self._fai, self._gzi = _locate_index(self._data, kind == "bgzf")
        self.contigs: dict[str, int] = _read_fai(self._fai, self.path)
        self._handle = None
        self._pid: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self.contigs)} contigs, {sum(self.contigs.values()):,} bases)"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_pid"] = None
        return state

    def _fasta(self):
        if self._handle is None or self._pid != os.getpid():
            import pysam

            try:
                self._handle = pysam.FastaFile(
                    str(self._data),
                    filepath_index=str(self._fai),
                    filepath_index_compressed=str(self._gzi) if self._gzi else None,
                )
            except (OSError, ValueError) as exc:
                raise HyenaDNAError(f"{self.path}: cannot open ({exc})") from None
            self._pid = os.getpid()
        return self._handle

    def region(self, text: str) -> tuple[str, int, int]:
        """``"contig"`` or ``"contig:start-end"`` (1-based, inclusive, samtools style; commas
        allowed) as 0-based half-open ``(contig, start, end)``, checked against the genome. A
        contig whose name holds ``:`` is named whole, or braced as samtools does
        (``{HLA-A*01:01}:1-100``); a text that reads both ways is refused as ambiguous."""
        text = text.strip()
        if text.startswith("{") and "}" in text:
            contig, rest = text[1:].split("}", 1)
            if rest and not rest.startswith(":"):
                raise HyenaDNAError(f"{self.path}: bad region {text!r} (want {{contig}}:start-end)")
            return self._span(text, contig, rest[1:])
        contig, colon, span = text.rpartition(":")
        if text in self.contigs:
            if colon and contig in self.contigs:
                raise HyenaDNAError(
                    f"{self.path}: region {text!r} is ambiguous: a contig of that name, and {contig!r} with a span; "
                    f"write {{{text}}} for the contig or {{{contig}}}:{span} for the span"
                )
            return text, 0, self.contigs[text]
        if not colon:
            return self._span(text, text, "")
        return self._span(text, contig, span)

    def _span(self, text: str, contig: str, span: str) -> tuple[str, int, int]:
        size = self.length(contig)
        if not span:
            return contig, 0, size
        try:
            first, last = (int(v) for v in span.replace(",", "").split("-"))
        except ValueError:
            raise HyenaDNAError(f"{self.path}: bad region {text!r} (want contig or contig:start-end)") from None
        if first > last:
            raise HyenaDNAError(f"{self.path}: region {text!r}: start {first:,} is after end {last:,}")
        if not 1 <= first <= last <= size:
            raise HyenaDNAError(f"{self.path}: region {text!r} is not within {contig} (length {size:,})")
        return contig, first - 1, last

    def windows(self, window: int, stride: int | None = None, region: str | None = None):
        """``(contig, start, end)`` of windows of ``window`` bases every ``stride`` (default:
        ``window``) along each contig in file order, or along ``region``; the last window of a
        contig ends at its end and may be shorter. Coordinates only: a caller fetches the bases
        of one window at a time, so a genome streams in bounded memory."""
        stride = stride or window
        if window < 1 or stride < 1:
            raise HyenaDNAError(f"window and stride must be positive, got {window} and {stride}")
        spans = [self.region(region)] if region else [(c, 0, n) for c, n in self.contigs.items()]
        for contig, lo, hi in spans:
            for start in range(lo, hi, stride):
                yield contig, start, min(start + window, hi)
                if start + window >= hi:
                    break

    def length(self, contig: str) -> int:
        try:
            return self.contigs[contig]
        except KeyError:
            raise HyenaDNAError(f"{self.path}: no contig {contig!r} (it has {_preview(self.contigs)})") from None

    def fetch(self, contig: str, start: int, end: int, pad: bool = False) -> str:
        """Bases ``[start, end)`` of ``contig``.

        With ``pad`` the range may run past either end of the contig and the missing part is
        filled with ``N``; without it such a range is an error naming the contig and its length.
        """
        size = self.length(contig)
        if end < start:
            raise HyenaDNAError(f"{self.path}: end {end} before start {start} on {contig}")
        if start < 0 or end > size:
            if not pad:
                raise HyenaDNAError(f"{self.path}: {contig}:{start}-{end} runs past the contig (length {size:,})")
            lo, hi = max(start, 0), min(end, size)
            inner = self.fetch(contig, lo, hi) if lo < hi else ""
            left = max(0, min(end, 0) - start)
            right = max(0, end - max(start, size))
            return "N" * left + inner + "N" * right
        try:
            seq = self._fasta().fetch(contig, start, end)
        except (OSError, ValueError) as exc:
            raise HyenaDNAError(f"{self.path}: cannot read {contig}:{start}-{end} ({exc})") from None
        if len(seq) != end - start:
            raise HyenaDNAError(
                f"{self.path}: {contig}:{start}-{end} returned {len(seq)} bases, expected {end - start} "
                "(is the index stale? delete the .fai/.gzi to rebuild it)"
            )
        return seq.upper() if self.soft_mask == "upper" else seq

    def select_contigs(
        self,
        include: Sequence[str] | None = None,
        exclude: Iterable[str] = (),
        pattern: str | None = None,
        min_length: int = 0,
    ) -> list[str]:
        """Contig names kept by an include list (in its order), an exclude list, a regex and a length floor.

        ``pattern`` must match the whole name (``chr[0-9]+`` keeps autosomes, not ``chr1_random``).
        Names in ``include`` or ``exclude`` that the genome lacks are an error, since a typo
        would otherwise silently change the training set.
        """
        for label, names in (("include", include or ()), ("exclude", exclude)):
            missing = [c for c in names if c not in self.contigs]
            if missing:
                raise HyenaDNAError(f"{self.path}: {label} names contigs it does not have: {missing}")
        names = list(include) if include else list(self.contigs)
        excluded = set(exclude)
        regex = re.compile(pattern) if pattern else None
        kept = [
            c
            for c in names
            if c not in excluded and (regex is None or regex.fullmatch(c)) and self.contigs[c] >= min_length
        ]
        if not kept:
            raise HyenaDNAError(f"{self.path}: no contig left after include/exclude/pattern/min_length")
        return kept


def _read_fai(fai: Path, fasta: Path) -> dict[str, int]:
    contigs: dict[str, int] = {}
    with open(fai, encoding="ascii", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 5 or not fields[1].isdigit():
                raise HyenaDNAError(f"{fai}, line {lineno}: not a FASTA index line")
            contigs[fields[0]] = int(fields[1])
    if not contigs:
        raise HyenaDNAError(f"{fasta}: no FASTA records")
    empty = [name for name, n in contigs.items() if n == 0]
    if empty:
        raise HyenaDNAError(f"{fasta}: record {empty[0]!r} has no sequence")
    return contigs


def _preview(contigs: dict[str, int], n: int = 5) -> str:
    names = list(contigs)
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more
