"""File helpers shared by the readers: compression detection and the cache folder.

htslib indexes only bgzip (BGZF) files; plain gzip files (common from NCBI and in Debian's doc
folders) are decompressed once into the cache folder, keyed by path, size and mtime, and written
under a temporary name so that an interrupted copy is never mistaken for a whole one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from hyenadna.errors import HyenaDNAError


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The folder for indexes and decompressed genomes that cannot live beside their source."""
    root = os.environ.get("HYENADNA_CACHE") or Path.home() / ".cache" / "hyenadna"
    return Path(root)


def compression(path: Path) -> Literal["plain", "bgzf", "gzip"]:
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] != b"\x1f\x8b":
        return "plain"
    # BGZF: gzip with FEXTRA set and an extra subfield 'BC' (SAM spec, section 4.1).
    if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzf"
    return "gzip"


def cache_slot(path: Path) -> Path:
    """A per-file cache folder keyed by the absolute path, size and mtime (a changed file gets a new slot)."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "genomes" / f"{path.name}.{key}"


def decompress_to_cache(path: Path) -> Path:
    slot = cache_slot(path)
    target = slot / path.name.removesuffix(".gz")
    if target.is_file():
        return target
    slot.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=slot, prefix=".tmp-", suffix=".fa")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out, length=1 << 22)
        os.replace(tmp, target)
    except (OSError, EOFError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise HyenaDNAError(f"{path}: cannot decompress ({exc})") from exc
    return target
