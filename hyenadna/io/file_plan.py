"""Every file a command will touch, resolved and checked before it does any work.

A command lists its inputs and outputs in a :class:`FilePlan` first; :meth:`FilePlan.check`
then refuses, before anything is created:

* an output that is one of the inputs (``score --vcf in.vcf --vcf_output in.vcf`` would rewrite
  the VCF it reads), compared by real path, so a symbolic or hard link to an input counts too;
* two outputs that are one file (``--output X --ism_tsv X`` would keep only one of them), with
  the files an output brings along (``OUTPUT.partial``, ``OUTPUT.parts/``, a ``.tbi`` index);
* an output whose folder does not exist (no silent ``mkdir`` outside the run's folder), an output
  file that is a folder, an output folder that is a file.

File names made from user text (labels, record names, output names) go through
:func:`safe_name`, and :func:`inside` joins one to a folder and refuses any result that is not in
that folder: no label can write outside the output folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hyenadna.errors import HyenaDNAError

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")
MAX_NAME = 100
"""Characters kept of user text in a file name (file systems allow 255 bytes per name)."""


def safe_name(text: object, fallback: str = "unnamed") -> str:
    """``text`` as one file-name component: letters, digits and ``._+=-`` kept, every other run of
    characters (``/``, spaces, control characters) one ``_``; no dot or ``_`` at either end
    (nothing hidden, no ``..``); at most :data:`MAX_NAME` characters; ``fallback`` when nothing
    is left. Different texts may share a name: :func:`unique_names` numbers them apart."""
    name = _UNSAFE.sub("_", str(text)).strip("._")[:MAX_NAME].rstrip("._")
    return name or fallback


def unique_names(texts: list[object], fallback: str = "unnamed") -> list[str]:
    """:func:`safe_name` of each text, with ``_2``, ``_3``... after a name already given (case
    folded, as on macOS and Windows file systems), so that no two texts share a file."""
    taken: set[str] = set()
    names = []
    for text in texts:
        base = safe_name(text, fallback)
        name, k = base, 1
        while name.lower() in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name.lower())
        names.append(name)
    return names


def inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name``, refused unless its real path lies in ``folder``'s (after links)."""
    base = Path(os.path.realpath(folder))
    path = Path(folder) / name
    real = Path(os.path.realpath(path))
    if base != real.parent and base not in real.parents:
        raise HyenaDNAError(f"file name {name!r} would leave the output folder {folder}")
    return path


def real(path: str | os.PathLike) -> str:
    """The real path (links resolved, relative to the working folder) of ``path``, which may not
    exist. ``~`` is the shell's to expand: a ``~`` that reaches us is a folder of that name, as
    every reader and writer takes it."""
    return os.path.realpath(os.fspath(path))


INDEX_SUFFIXES = (".fai", ".gzi", ".tbi", ".csi", ".bai", ".crai")
"""Indexes kept beside an input (``genome.fa.fai``, ``in.vcf.gz.tbi``): inputs too."""
MAX_FILES = 100_000
"""Files of an input folder listed at most (a Genomic Benchmarks folder holds thousands)."""
TEMPORARY_NAME = len(".{}.12345678.tmp") - 2
"""Characters :func:`hyenadna.io.atomic.atomic_write` adds around a name for its temporary file."""


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:  # hard links: two names, one file
        return os.path.samefile(a, b)
    except OSError:
        return False


@dataclass
class FilePlan:
    """The inputs and outputs of one command (module docstring).

    ``option`` names say which flag a path came from, so a refusal names what to change."""

    command: str
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str, str]] = field(default_factory=list)  # (option, real path, of which output)
    cleared: set[str] = field(default_factory=set)  # real paths of output folders the run clears or removes

    def input(self, option: str, path: object) -> None:
        """An input file or folder (``None``: not given), with the indexes beside a file and
        every file under a folder. Its existence is the reader's to check."""
        if path is None or path == "":
            return
        if not isinstance(path, (str, os.PathLike)):
            raise HyenaDNAError(f"{self.command}: {option} must be a path, got {path!r}")
        where = real(path)
        self.inputs.append((option, where))
        for suffix in INDEX_SUFFIXES:
            if os.path.exists(where + suffix):
                self.inputs.append((f"{option} ({os.path.basename(where)}{suffix})", where + suffix))
        if os.path.isdir(where):
            for k, (root, _, files) in enumerate(os.walk(where)):
                for name in files:
                    self.inputs.append((f"{option} ({os.path.relpath(os.path.join(root, name), where)})",
                                        real(os.path.join(root, name))))  # fmt: skip
                if len(self.inputs) > MAX_FILES or k > MAX_FILES:
                    break

    def model(self, option: str, name_or_path: str | os.PathLike | None) -> None:
        """A model given by name or path: a folder's files (weights, config, task) are inputs,
        so no output can replace the weights it reads. A preset or hub name is no file."""
        if name_or_path is not None and os.path.exists(name_or_path):
            self.input(option, name_or_path)

    def output(
        self,
        option: str,
        path: str | os.PathLike | None,
        folder: bool = False,
        companions: tuple[str, ...] = (),
        make_parent: bool = False,
        cleared: bool = False,
    ) -> str | None:
        """An output file (or, with ``folder``, an output folder) and the ``companions`` it
        brings: suffixes added to its name (``.partial``, ``.parts``, ``.tbi``; a ``.parts``
        folder is removed when the run is done, so no input may lie in it). ``cleared``: the run
        may clear the folder (a training run's ``--overwrite``), so no input may lie in it either.
        Its parent folder must exist and be writable unless ``make_parent`` (a run folder, made
        with its parents as Lightning's are). An existing output must be a regular file (or a
        folder, for a folder): a device or a pipe is never replaced. Returns the path as given."""
        if path is None or str(path) == "":
            return None
        if not isinstance(path, (str, os.PathLike)):
            raise HyenaDNAError(f"{self.command}: {option} must be a path, got {path!r}")
        given = os.fspath(path)
        where = real(given)
        if given.endswith(os.sep) and not folder:
            raise HyenaDNAError(f"{self.command}: {option} {given} names a folder; give a file path")
        if os.path.isdir(where) and not folder:
            raise HyenaDNAError(f"{self.command}: {option} {given} is a folder; give a file path")
        if folder and os.path.exists(where) and not os.path.isdir(where):
            raise HyenaDNAError(f"{self.command}: {option} {given} is a file; give a folder")
        if not folder and os.path.exists(where) and not os.path.isfile(where):
            raise HyenaDNAError(
                f"{self.command}: {option} {given} is not a regular file (a device, pipe or socket); never replaced"
            )
        longest = max((len(s) for s in companions), default=0) + TEMPORARY_NAME
        if len(os.fsencode(os.path.basename(where))) + longest > 255:
            raise HyenaDNAError(f"{self.command}: {option}: the file name {os.path.basename(where)!r} is too long")
        parent = os.path.dirname(where)
        if not make_parent:
            if not os.path.isdir(parent):
                what = "is not a folder" if os.path.exists(parent) else "does not exist"
                raise HyenaDNAError(
                    f"{self.command}: the folder of {option} {given} ({parent}) {what}; create it first"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise HyenaDNAError(f"{self.command}: cannot write to the folder of {option} {given} ({parent})")
        self.outputs.append((option, where, option))
        if cleared:
            self.cleared.add(where)
        for suffix in companions:
            if not suffix.endswith(".parts") and os.path.isdir(where + suffix):
                message = f"{given}{suffix}, which this run writes, is a folder; move it away"
                raise HyenaDNAError(f"{self.command}: {message}")
            self.outputs.append((f"{option} ({os.path.basename(where)}{suffix})", where + suffix, option))
            if suffix.endswith(".parts"):
                self.cleared.add(where + suffix)
        return given

    def check(self) -> FilePlan:
        """Refuse an output equal to an input or to another output (module docstring)."""
        for k, (option, path, owner) in enumerate(self.outputs):
            for in_option, in_path in self.inputs:
                if _same(path, in_path):
                    raise HyenaDNAError(
                        f"{self.command}: {option} {path} is the input {in_option}; writing it would destroy the "
                        "input: choose another output path"
                    )
                if path in self.cleared and in_path.startswith(path + os.sep):
                    raise HyenaDNAError(
                        f"{self.command}: {option} {path} holds the input {in_option} ({in_path}), and this run may "
                        "clear it: choose another output folder, or move the input out of it"
                    )
            for other, other_path, other_owner in self.outputs[:k]:
                if other_owner != owner and _same(path, other_path):
                    raise HyenaDNAError(
                        f"{self.command}: {option} and {other} are the same file ({path}); "
                        "give each output its own path"
                    )
        return self


def sources(value: object) -> list[str]:
    """The paths of a data option that is one path, a mapping ``{label: path}`` or a list of them."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [p for v in value.values() for p in sources(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in sources(v)]
    return [str(value)]


def sequence_command_plan(command: str, model: str, input: object, reader: dict | None, output: str) -> FilePlan:
    """The plan, still to be checked, of a command that reads a model and sequences (a file, one
    file per label, or a folder; a BED reader's genome) and writes ``output`` through its chunk
    folder (``.parts/``, ``.lock``); the caller adds any other output."""
    plan = FilePlan(command)
    plan.model("--model", model)
    for path in sources(input):
        plan.input("--input", path)  # a folder's files too
    plan.input("--reader.genome", (reader or {}).get("genome"))
    plan.output("--output", output, companions=(".parts", ".lock"))
    return plan


def check_run_folder(
    command: str, output: str | os.PathLike, model: str | None, inputs: dict[str, object], overwrite: bool = False
) -> None:
    """The plan of a training run: its folder (made with its parents, as Lightning's are) is no
    input, and with ``overwrite``, which clears an earlier run's ``model/`` and checkpoints,
    holds none (a model read from there would be lost)."""
    plan = FilePlan(command)
    plan.model("--model.name_or_path", model)
    for option, value in inputs.items():
        for path in sources(value):
            plan.input(option, path)
    plan.output("--output", output, folder=True, make_parent=True, cleared=overwrite)
    plan.check()
