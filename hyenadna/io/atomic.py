"""Writing files so that an interrupted run never leaves one that looks complete.

Every output goes to a temporary name in the same folder and is renamed into place only when it
is whole (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``; on any error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # as open() would make it: mkstemp's is 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
    return out, partial  # its folder exists: the command's file plan checked it


RUN_ARTEFACTS = (
    "checkpoints", "logs", "model", "summary.json", "metrics.json", "config.yaml",
    "test_predictions.tsv", "plots", "cnn_baseline",  # a fine-tune's test report and its CNN's own run
    "study.db", "trials", "trials.tsv", "best_recipe.yaml", "final", "best",  # a tuning run's study, trials, runs
    "confirm",  # and its reruns of the leading trials on more seeds
)  # fmt: skip
"""What a training run writes into its folder: only a folder holding nothing else is cleared."""


def prepare_run_folder(output: str | os.PathLike, resume: bool | str, overwrite: bool) -> Path:
    """The run folder ``output``, made ready: a fresh or empty one is used as it is; a non-empty
    one needs ``resume`` (continue it) or ``overwrite`` (clear the old run first, so that no
    stale ``last.ckpt`` or summary survives). A folder holding anything a run does not write is
    never cleared."""
    from hyenadna.errors import HyenaDNAError

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise HyenaDNAError(f"{out} is a file; a run needs a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if entries and resume:
        return out
    if entries and not overwrite:
        raise HyenaDNAError(
            f"{out} holds an earlier run ({', '.join(entries[:4])}); pass --resume to continue it, "
            "--overwrite to replace it, or choose another --output"
        )
    if entries:
        foreign = [name for name in entries if name not in RUN_ARTEFACTS]
        if foreign:
            raise HyenaDNAError(f"{out} holds files no run writes ({', '.join(foreign[:4])}); not clearing it")
        for name in entries:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_run_config(folder: Path, values: dict, name: str = "config.yaml", header: str = "") -> Path:
    """The run's resolved configuration as ``folder/name``, in the form ``--config`` reads
    back: the run function's arguments, option groups as nested mappings, after ``header``
    (comment lines). ``resume`` and ``overwrite`` are written false: the file describes the run,
    not how it was launched."""
    import dataclasses

    import yaml

    def plain(value):
        if dataclasses.is_dataclass(value):
            return plain(dataclasses.asdict(value))
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    resolved = {**plain(values), "resume": False, "overwrite": False}
    path = folder / name
    atomic_write_text(path, header + yaml.safe_dump(resolved, sort_keys=False))
    return path


def launched_as_rank_zero() -> bool:
    """Whether this process is the first of a (possibly distributed) launch: the process that
    prepares the run folder. Lightning's and torchrun's other processes carry a rank > 0 in
    ``RANK``, ``NODE_RANK`` or ``LOCAL_RANK``."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "NODE_RANK", "LOCAL_RANK"))


def kept_after_failure(exc: BaseException, kept: str) -> BaseException | None:
    """What a run that stopped with ``exc`` says of the work it keeps (``kept``: "X keeps N
    records"): our error gains the note (returned, to be raised in its place); an interrupt or a
    bug gets it as a line on stderr (None returned: the original goes on)."""
    import sys

    from hyenadna.errors import HyenaDNAError

    note = (
        f"{kept}: --resume continues it while the inputs and settings are unchanged; after changing them, "
        "delete it and run again"
    )
    if isinstance(exc, HyenaDNAError):
        return HyenaDNAError(f"{exc}; {note}")
    print(f"hyenadna: stopped; {note}", file=sys.stderr)
    return None


@contextmanager
def removed_unless_written(partial: Path, fresh: bool, written: Callable[[], int]) -> Iterator[None]:
    """Remove ``partial`` when the block fails before a record is in it and this run created it
    (``fresh``): a typo in an input path must not leave a ``.partial`` that blocks the corrected
    command. A failure after that names the ``.partial`` and what it keeps. ``written()`` counts
    the records in the file when the failure happens."""
    try:
        yield
    except BaseException as exc:
        count = written()
        if fresh and count == 0:
            partial.unlink(missing_ok=True)
            partial.with_name(partial.name + ".json").unlink(missing_ok=True)  # score's record of its settings
            raise
        replacement = kept_after_failure(exc, f"{partial} keeps the {count:,} records written before")
        if replacement is not None:
            raise replacement from None
        raise


@contextmanager
def run_lock(output: Path) -> Iterator[None]:
    """Hold ``OUTPUT.lock`` for the whole run: a second run writing the same output (a
    ``--resume`` started while the first still runs, say) stops at once instead of appending
    the same records twice. The lock is the kernel's (``flock``), so a killed run leaves none."""
    import fcntl

    from hyenadna.errors import HyenaDNAError

    path = output.with_name(output.name + ".lock")
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HyenaDNAError(f"another run is writing {output} (it holds {path}); wait for it or stop it") from None
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_fingerprint(path: str | os.PathLike | None) -> dict | None:
    """Where a file is, its size and modification time: what a resumed run checks to know its
    input is the one the stopped run read."""
    if path is None:
        return None
    target = Path(path)
    if not target.exists():
        return {"path": str(target)}
    info = target.stat()
    return {"path": str(target.resolve()), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def files_fingerprint(model: str, inputs: list) -> dict:
    """Fingerprints of a run's input files and of the model's weights (a preset has none):
    stored in a resumable output and compared on ``--resume``."""
    weights = [Path(model) / name for name in ("model.safetensors", "weights.ckpt", "pytorch_model.bin")]
    return {
        "model": [file_fingerprint(w) for w in weights if w.is_file()],
        "inputs": [file_fingerprint(p) for p in inputs if p],
    }


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the block runs, so that a killed run closes its
    files and removes its temporary ones (``atomic_write`` does on any exception)."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
