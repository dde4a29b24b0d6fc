"""Streaming FASTA reading with errors that name the file and line.

This reader walks a file once (plain or gzip) and is meant for record-by-record work; indexed
random access to genomes comes from pyfaidx / pysam elsewhere in this package.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hyenadna.errors import HyenaDNAError


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="ascii", errors="strict")
    return open(path, encoding="ascii", errors="strict")


@dataclass(frozen=True)
class FastaRecord:
    """One record: ``name`` is the header up to the first space, ``header`` the whole line after '>'."""

    name: str
    header: str
    sequence: str
    line: int  # line number of the header, for error messages

    @property
    def description(self) -> str:
        """The header after the name (empty when there is none)."""
        return self.header[len(self.name) :].strip()


def read_fasta_records(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Yield each record with its full header and line number.

    Raises :class:`HyenaDNAError` for a missing or empty file, sequence before the first
    header, a record with no sequence, or non-ASCII bytes, naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"FASTA file not found: {path}")
    header: str | None = None
    header_line = 0
    chunks: list[str] = []
    lineno = 0
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.strip()
                if not line or line.startswith(";"):
                    continue
                if line.startswith(">"):
                    if header is not None:
                        yield _finish(path, header, header_line, chunks)
                    header = line[1:].strip()
                    if not header:
                        raise HyenaDNAError(f"{path}, line {lineno}: header with no name")
                    header_line, chunks = lineno, []
                elif header is None:
                    raise HyenaDNAError(f"{path}, line {lineno}: sequence before the first '>' header")
                else:
                    chunks.append(line)
    except UnicodeDecodeError as exc:
        raise HyenaDNAError(f"{path}, after line {lineno}: not a text FASTA file ({exc.reason})") from None
    except (OSError, EOFError) as exc:
        raise HyenaDNAError(f"{path}: cannot read ({exc})") from exc
    if header is None:
        raise HyenaDNAError(f"{path}: no FASTA records in the file")
    yield _finish(path, header, header_line, chunks)


def fasta_text(records: list[tuple[str, str]], width: int = 60) -> str:
    """FASTA records ``(header, sequence)`` with sequence lines of ``width`` bases."""
    lines = []
    for header, seq in records:
        lines.append(f">{header}")
        lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
    return "\n".join(lines) + "\n"


def read_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """Yield ``(name, sequence)`` for each record; the name is the header up to the first space."""
    for record in read_fasta_records(path):
        yield record.name, record.sequence


def _finish(path: Path, header: str, header_line: int, chunks: list[str]) -> FastaRecord:
    name = header.split()[0]
    if not chunks:
        raise HyenaDNAError(f"{path}, line {header_line}: record {name!r} has no sequence")
    return FastaRecord(name=name, header=header, sequence="".join(chunks), line=header_line)
