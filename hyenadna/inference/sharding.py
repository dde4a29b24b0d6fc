"""Inference over several processes, devices and nodes: ``--trainer.devices/num_nodes/strategy``.

The inference commands (``embed``, ``score --vcf``, ``predict``, ``explain``; ``loss``, see
:func:`hyenadna.analysis.lm_loss.fasta_lm_loss`) launch their processes through
Lightning Fabric, as training does through the Trainer. Every process reads the whole input
stream and cuts it into the same chunks; chunk ``k`` belongs to rank ``k % world_size``. Each
chunk's results go to their own file in ``OUTPUT.parts/`` (a temporary name renamed when whole,
so a process killed by any signal leaves only complete chunk files), and when every rank is done
rank 0 merges them in chunk order into ``OUTPUT``: the same records in the same order, with the
values a one-process run computes (the chunks, hence the batches, are the same).

Resume: ``--resume`` keeps every chunk file already written and computes the rest, whichever
rank (or how many ranks) wrote them; the settings and input fingerprints recorded in
``OUTPUT.parts/settings.json`` must match. The chunk size is part of the settings. ``embed`` and
``score`` write ``OUTPUT.partial`` when they run in one process: a chunk folder left by several
processes is continued through its chunks by one process too (:func:`continues_chunks`), and a
``.partial`` left by one process is refused to several, with that reason.

A run refused or failing before its first chunk is written removes the chunk folder it created,
so the corrected command runs as if the first never had; one that fails later says how many
chunks the folder keeps and that ``--resume`` continues them.

Several nodes need ``OUTPUT`` on a file system that all of them see.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write, atomic_write_text, kept_after_failure, run_lock, sigterm_as_interrupt

T = TypeVar("T")


@dataclass(frozen=True)
class Processes:
    """How many processes run an inference command, on what (Lightning's Fabric/Trainer flags).

    Attributes:
        accelerator: cpu, gpu (cuda) or auto.
        devices: processes per node (one per device); 1 runs in this process alone.
        num_nodes: machines taking part (launch the command on each with the usual
            MASTER_ADDR, MASTER_PORT, NODE_RANK, or under SLURM / torchrun).
        strategy: ddp (the default) or another Lightning strategy that launches processes.
    """

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "ddp"

    @property
    def distributed(self) -> bool:
        return self.devices != 1 or self.num_nodes != 1


ONE_PROCESS = Processes()
"""The default of the inference commands' ``trainer``: this process alone."""


@dataclass
class Rank:
    """This process's place in the run: its rank, the number of ranks, its device, a barrier,
    and ``reduce_sum``, the sum of a tensor over the ranks (identity in one process)."""

    rank: int
    world_size: int
    device: Any
    barrier: Callable[[], None]
    reduce_sum: Callable[[Any], Any] = lambda tensor: tensor

    @property
    def leader(self) -> bool:
        return self.rank == 0


def alone(device: Any) -> Rank:
    """The one rank of a run in this process alone (no process group)."""
    return Rank(0, 1, device, lambda: None)


def launch(processes: Processes | None) -> Rank | None:
    """Start the run's processes (``None`` when one process runs alone: the caller's usual path).

    Under Fabric's launcher this process becomes rank 0 and re-runs the same command line for the
    other ranks of this node, which reach this call too and join the process group."""
    if processes is None or not processes.distributed:
        return None
    if processes.devices < 1 or processes.num_nodes < 1:
        raise HyenaDNAError(f"--trainer.devices and --trainer.num_nodes must be positive, got {processes}")
    from lightning.fabric import Fabric

    accelerator = processes.accelerator
    if accelerator == "auto":
        import torch

        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        fabric = Fabric(
            accelerator=accelerator,
            devices=processes.devices,
            num_nodes=processes.num_nodes,
            strategy=processes.strategy,
        )
    except (RuntimeError, ValueError) as exc:  # no such device, too few devices, unknown strategy
        raise HyenaDNAError(f"cannot start the processes of {processes}: {exc}") from None
    fabric.launch()
    atexit.register(_destroy_process_group)  # on any way out, errors included

    def reduce_sum(tensor):
        return fabric.all_reduce(tensor.to(fabric.device), reduce_op="sum").cpu()

    return Rank(fabric.global_rank, fabric.world_size, fabric.device, fabric.barrier, reduce_sum)


def close_processes() -> None:
    """At the end of a command that succeeded: wait for every rank, then close the process
    group, so that the ranks leave together and gloo / NCCL are torn down in order (a rank that
    exits while another still holds its connections can abort the other at exit). Nothing
    without a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def continues_chunks(output: str | Path, distributed: bool, resume: bool) -> bool:
    """Whether a command that writes ``OUTPUT.partial`` in one process must run through the chunk
    folder instead: when it runs on several processes, or when ``--resume`` finds the
    ``OUTPUT.parts/`` of a run on several processes (its chunks are kept, whatever the device
    count now). What a stopped run left is never passed over: without ``--resume`` either kind
    is refused, as is a ``.partial`` (one process's) on several processes, and the two together."""
    out = Path(output)
    partial, parts = out.with_name(out.name + ".partial"), out.with_name(out.name + ".parts")
    left = [p for p in (partial, parts) if p.exists()]
    if left and not resume:
        raise HyenaDNAError(f"{left[0]} is left from a stopped run; pass --resume to continue it or delete it")
    if len(left) == 2:
        raise HyenaDNAError(
            f"{partial} (a run in one process) and {parts} (a run on several) are both left from stopped runs: "
            "delete the one you do not want to continue"
        )
    if distributed and partial.exists():
        raise HyenaDNAError(
            f"{partial} was left by a run in one process, which only one process can continue: run the same "
            "command without --trainer.devices / --trainer.num_nodes, or delete it to start again"
        )
    return distributed or parts.is_dir()


def refuse_changed_settings(left: Path, before: dict, now: dict) -> None:
    """Refuse to resume ``left`` (a stopped run's ``.parts/`` or ``.partial``) with settings other
    than the ones it was started with, naming each one that changed (with both values when short)."""
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if not changed:
        return
    shown = []
    for key in changed:
        old, new = json.dumps(before.get(key), default=str), json.dumps(now.get(key), default=str)
        shown.append(f"{key} (was {old}, now {new})" if len(old) + len(new) < 60 else key)
    raise HyenaDNAError(
        f"{left}: cannot resume, its {', '.join(shown)} differ from this run's: resume with the settings and "
        "inputs it was started with, or delete it to start again"
    )


def check_recorded_settings(left: Path, recorded: Path, now: dict) -> None:
    """Refuse to resume ``left`` unless ``recorded``, the settings file it was started with, can be
    read and holds the settings ``now`` (:func:`refuse_changed_settings`)."""
    try:
        before = json.loads(recorded.read_text())
    except (OSError, ValueError):
        raise HyenaDNAError(f"{left}: cannot resume, its settings ({recorded.name}) are missing or torn") from None
    refuse_changed_settings(left, before, now)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class ChunkFolder:
    """``OUTPUT.parts/``: one file per chunk of the input, written by the rank that owns it.

    Made ready on every rank (the same checks run everywhere, so a refusal stops them all
    before any work): an existing ``OUTPUT`` needs ``overwrite``; an existing folder is a
    stopped run's and needs ``resume``, with the same ``settings``.
    """

    def __init__(self, output: str | Path, rank: Rank, settings: dict, suffix: str, resume: bool, overwrite: bool):
        self.output = Path(output)
        self.folder = self.output.with_name(self.output.name + ".parts")
        self.rank = rank
        self.suffix = suffix
        self.chunks = 0  # chunks in the input, known once :meth:`owned` has run through it
        self._settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
        if self.output.exists() and not overwrite:
            raise HyenaDNAError(f"{self.output} exists; pass overwrite=True (--overwrite) to replace it")
        recorded = self.folder / "settings.json"
        stopped = self.folder.is_dir()
        if stopped and not resume:
            raise HyenaDNAError(f"{self.folder} is left from a stopped run; pass --resume to continue it or delete it")
        if stopped:
            check_recorded_settings(self.folder, recorded, self._settings)
        self.created = not stopped  # by this run: removed again when it fails before any chunk is written
        rank.barrier()  # every rank has looked before the leader creates anything
        if rank.leader and not stopped:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(recorded, json.dumps(self._settings, sort_keys=True))
        rank.barrier()

    def path(self, k: int) -> Path:
        return self.folder / f"chunk{k:09d}{self.suffix}"

    def written(self) -> int:
        """Whole chunk files in the folder (temporary ones are not counted)."""
        return len(list(self.folder.glob(f"chunk*{self.suffix}"))) if self.folder.is_dir() else 0

    def after_failure(self, exc: BaseException) -> BaseException | None:
        """On the leader, when the run stops with ``exc``: remove the folder this run created if
        no chunk is in it (in one process only: another rank may be writing its first chunk);
        else name what it keeps and how to continue (a replacement error for ours, a line on
        stderr for an interrupt or a bug)."""
        if not self.rank.leader:
            return None
        kept = self.written()
        if kept == 0 and self.created and self.rank.world_size == 1:
            shutil.rmtree(self.folder, ignore_errors=True)
            return None
        return kept_after_failure(exc, f"{self.folder} keeps {kept} finished chunk(s)")

    def owned(self, chunks: Iterable[list[T]]) -> Iterator[tuple[int, list[T]]]:
        """(k, chunk) for the chunks this rank owns and has not written yet; counts all chunks."""
        self.chunks = 0
        for k, chunk in enumerate(chunks):
            self.chunks = k + 1
            if k % self.rank.world_size == self.rank.rank and not self.path(k).exists():
                yield k, chunk

    def write(self, k: int, write: Callable[[str], object]) -> None:
        """Write chunk ``k`` with ``write(tmp_path)``; it appears under its name only when whole."""
        atomic_write(self.path(k), write)

    def merge(self, merge: Callable[[list[Path], str], object]) -> bool:
        """Wait for every rank; then rank 0 calls ``merge(chunk_paths, tmp_path)`` to build the
        output, renames it to ``OUTPUT`` and removes the folder. True on rank 0."""
        self.rank.barrier()
        if not self.rank.leader:
            return False
        if self.chunks == 0:
            raise HyenaDNAError("no records in the input")
        paths = [self.path(k) for k in range(self.chunks)]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise HyenaDNAError(
                f"{self.folder}: {len(missing)} chunks missing after every rank finished ({', '.join(missing[:3])}); "
                "run the same command with --resume"
            )
        atomic_write(self.output, lambda tmp: merge(paths, tmp))
        shutil.rmtree(self.folder)
        return True


def join_text(header: str) -> Callable[[list[Path], str], None]:
    """The ``merge`` of a text table: ``header`` (with its newline), then every part in order."""

    def join(paths: list[Path], path: str) -> None:
        with open(path, "w") as fh:
            fh.write(header)
            for part in paths:
                fh.write(part.read_text())

    return join


def run_chunks(
    output: str | Path,
    rank: Rank,
    settings: dict,
    suffix: str,
    resume: bool,
    overwrite: bool,
    chunks: Iterable[list[T]],
    writer: Callable[[list[T]], Callable[[str], object]],
    merge: Callable[[list[Path], str], object],
    bar: Any,
) -> bool:
    """The whole run of one rank: rank 0 holds ``OUTPUT.lock``; the chunk folder is made ready;
    each chunk this rank owns is computed by ``writer(chunk)``, which returns the function that
    writes it, and counted on ``bar`` (a tqdm); then rank 0 joins the parts with ``merge``.
    SIGTERM stops the run like Ctrl-C, leaving only whole chunk files. True on rank 0."""
    with contextlib.ExitStack() as stack:
        if rank.leader:
            stack.enter_context(run_lock(Path(output)))
        parts = ChunkFolder(output, rank, settings, suffix, resume, overwrite)
        try:
            with sigterm_as_interrupt():
                for k, items in parts.owned(chunks):
                    parts.write(k, writer(items))
                    bar.update(len(items))
            bar.close()
            return parts.merge(merge)
        except BaseException as exc:
            replacement = parts.after_failure(exc)
            if replacement is not None:
                raise replacement from None
            raise
