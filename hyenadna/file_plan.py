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
    """The real path (links resolved, relative to the working folder) of ``path``, which may not exist."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


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
    folders: set[str] = field(default_factory=set)  # real paths of output folders: no input may lie in one

    def input(self, option: str, path: str | os.PathLike | None) -> None:
        """An input file or folder (``None``: not given). Its existence is the reader's to check."""
        if path is not None and str(path) != "":
            self.inputs.append((option, real(path)))

    def model(self, option: str, name_or_path: str | os.PathLike | None) -> None:
        """A model given by name or path: a folder's files (weights, config, task) are inputs,
        so no output can replace the weights it reads. A preset or hub name is no file."""
        if name_or_path is None or not os.path.exists(name_or_path):
            return
        self.input(option, name_or_path)
        if os.path.isdir(name_or_path):
            for entry in sorted(Path(name_or_path).iterdir()):
                if entry.is_file():
                    self.input(f"{option} ({entry.name})", entry)

    def output(
        self,
        option: str,
        path: str | os.PathLike | None,
        folder: bool = False,
        companions: tuple[str, ...] = (),
        make_parent: bool = False,
    ) -> Path | None:
        """An output file (or, with ``folder``, an output folder) and the ``companions`` it
        brings: suffixes added to its name (``.partial``, ``.parts``, ``.tbi``). Its parent
        folder must exist unless ``make_parent`` (files inside a folder the command makes).
        Returns the path as given."""
        if path is None or str(path) == "":
            return None
        given = Path(path)
        if str(path).endswith(os.sep) and not folder:
            raise HyenaDNAError(f"{self.command}: {option} {path} names a folder; give a file path")
        if not folder and given.is_dir():
            raise HyenaDNAError(f"{self.command}: {option} {path} is a folder; give a file path")
        if folder and given.exists() and not given.is_dir():
            raise HyenaDNAError(f"{self.command}: {option} {path} is a file; give a folder")
        parent = Path(real(given)).parent
        if not make_parent and not parent.is_dir():
            what = "is not a folder" if parent.exists() else "does not exist"
            raise HyenaDNAError(f"{self.command}: the folder of {option} {path} ({parent}) {what}; create it first")
        self.outputs.append((option, real(given), option))
        if folder:
            self.folders.add(real(given))
        for suffix in companions:
            self.outputs.append((f"{option} ({given.name}{suffix})", real(given) + suffix, option))
            if suffix.endswith(".parts"):
                self.folders.add(real(given) + suffix)
        return given

    def check(self) -> FilePlan:
        """Refuse an output equal to an input or to another output (module docstring)."""
        for k, (option, path, owner) in enumerate(self.outputs):
            for in_option, in_path in self.inputs:
                if _same(path, in_path) or (path in self.folders and in_path.startswith(path + os.sep)):
                    raise HyenaDNAError(
                        f"{self.command}: {option} {path} is the input {in_option}; writing it would destroy the "
                        "input: choose another output path"
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


def check_run_folder(command: str, output: str | os.PathLike, model: str | None, inputs: dict[str, object]) -> None:
    """The plan of a training run: its folder (made with its parents, as Lightning's are) must not
    be, nor hold, any input (``--overwrite`` clears a run folder's ``model/``: a model read from
    there would be lost), and no input may be the folder."""
    plan = FilePlan(command)
    plan.model("--model.name_or_path", model)
    for option, value in inputs.items():
        for path in sources(value):
            plan.input(option, path)
    plan.output("--output", output, folder=True, make_parent=True)
    plan.check()
