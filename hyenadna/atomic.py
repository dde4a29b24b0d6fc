"""Writing files so that an interrupted run never leaves one that looks complete.

Every output goes to a temporary name in the same folder and is renamed into place only when it
is whole (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``; on any error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def partial_output(output: str | os.PathLike, resume: bool, overwrite: bool) -> tuple[Path, Path]:
    """(final path, ``.partial`` path) of a resumable output, refusing to clobber either.

    A long job writes ``OUTPUT.partial`` as it goes and renames it to ``OUTPUT`` when complete.
    An existing ``OUTPUT`` needs ``overwrite``; a ``.partial`` left by a stopped run needs
    ``resume`` (to continue it) or to be deleted.
    """
    from hyenadna.errors import HyenaDNAError

    out = Path(output)
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not overwrite:
        raise HyenaDNAError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    if partial.exists() and not resume:
        raise HyenaDNAError(f"{partial} is left from a stopped run; pass --resume to continue it or delete it")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, partial
