"""Labelled sequences for fine-tuning, read from the formats users already have, and their label vocabulary.

Every reader yields :class:`LabelledRecord` with the label as a tuple of strings: one class name
(multi-class), the set of positive classes (multi-label), or one value per target (regression).
:class:`LabelVocab` turns those into tensors' targets and is saved with a fine-tuned model, so class
``k`` means the same thing at training and at prediction time.

Formats:

* CSV/TSV with a header: sequence and label columns (names configurable), optional name and
  split columns; several label columns mean several regression targets or one 0/1 column per
  class for multi-label.
* FASTA whose header carries the label: a ``label=VALUE`` field, or the header's last character
  (the Nucleotide Transformer task files, ``>name|1``).
* BED + genome with a label column.
* The Genomic Benchmarks folder layout: ``<root>/<train|test>/<class>/*.txt``, one sequence per file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hyenadna.data.fasta import read_fasta_records
from hyenadna.data.genome import Genome
from hyenadna.data.intervals import Resize, read_bed, region_sequence
from hyenadna.data.intervals import read_table_rows as _table_rows
from hyenadna.errors import HyenaDNAError

Task = Literal["multiclass", "multilabel", "regression"]
TASKS = ("multiclass", "multilabel", "regression")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val"}
SPLIT_NAMES |= {"test": "test", "testing": "test"}


@dataclass(frozen=True)
class LabelledRecord:
    """A sequence with its raw label(s); ``where`` names the file and line or record."""

    name: str
    sequence: str
    label: tuple[str, ...]
    split: str | None = None
    where: str = ""

    def __post_init__(self) -> None:
        if not self.sequence:
            raise HyenaDNAError(f"{self.where or self.name}: empty sequence")


def _split_name(value: str | None, where: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return SPLIT_NAMES[value.strip().lower()]
    except KeyError:
        raise HyenaDNAError(f"{where}: unknown split {value!r} (use train, val or test)") from None


def _split_labels(value: str, separator: str | None) -> tuple[str, ...]:
    value = value.strip()
    if separator is None:
        return (value,)
    return tuple(part.strip() for part in value.split(separator) if part.strip())


def read_labelled_table(
    path: str | os.PathLike,
    sequence_col: str = "sequence",
    label_cols: str | Sequence[str] = "label",
    name_col: str | None = None,
    split_col: str | None = None,
    label_separator: str | None = None,
    class_columns: bool = False,
) -> Iterator[LabelledRecord]:
    """Records of a CSV/TSV with a header line.

    ``label_separator`` splits one column into several labels (multi-label ``"a;b"``). With
    ``class_columns`` each label column is one class holding 0/1, and the label is the set of
    columns that hold 1 (multi-label in the DeepSEA style). Otherwise several label columns give
    one value each (multi-output regression).
    """
    label_cols = [label_cols] if isinstance(label_cols, str) else list(label_cols)
    required = [sequence_col, *label_cols] + [c for c in (name_col, split_col) if c]
    for index, (where, row) in enumerate(_table_rows(path, required)):
        if class_columns:
            label = tuple(c for c in label_cols if _is_one(row[c], where, c))
        elif len(label_cols) == 1:
            label = _split_labels(row[label_cols[0]], label_separator)
        else:
            label = tuple(row[c].strip() for c in label_cols)
        yield LabelledRecord(
            name=row[name_col] if name_col else f"{Path(path).name}:{index}",
            sequence=row[sequence_col].strip(),
            label=label,
            split=_split_name(row[split_col], where) if split_col else None,
            where=where,
        )


def _is_one(value: str, where: str, column: str) -> bool:
    value = value.strip()
    if value in ("1", "1.0", "true", "True"):
        return True
    if value in ("0", "0.0", "false", "False"):
        return False
    raise HyenaDNAError(f"{where}: class column {column!r} must hold 0 or 1, got {value!r}")


def read_labelled_fasta(
    path: str | os.PathLike,
    label_from: Literal["field", "last_char"] = "field",
    field: str = "label",
    label_separator: str | None = None,
) -> Iterator[LabelledRecord]:
    """Records of a FASTA whose header carries the label.

    ``label_from="field"`` reads ``field=VALUE`` from the header (``>seq7 label=enhancer``);
    ``"last_char"`` takes the header's last character (``>promoter_12|1``), as in the
    Nucleotide Transformer task files.
    """
    if label_from not in ("field", "last_char"):
        raise HyenaDNAError(f"label_from must be 'field' or 'last_char', got {label_from!r}")
    prefix = field + "="
    for record in read_fasta_records(path):
        where = f"{path}, line {record.line} (record {record.name!r})"
        if label_from == "last_char":
            value = record.header[-1]
            name = record.header[:-1].rstrip("|_ :") or record.name
        else:
            values = [tok[len(prefix) :] for tok in record.header.split() if tok.startswith(prefix)]
            if len(values) != 1:
                raise HyenaDNAError(f"{where}: expected one '{prefix}VALUE' field in the header")
            value, name = values[0], record.name
        yield LabelledRecord(name, record.sequence, _split_labels(value, label_separator), where=where)


def read_labelled_bed(
    path: str | os.PathLike,
    genome: Genome | str | os.PathLike,
    label_column: int = 4,
    length: int | None = None,
    resize: Resize = "none",
    flank: int = 0,
    label_separator: str | None = None,
    split_column: int | None = None,
) -> Iterator[LabelledRecord]:
    """Records from BED regions and a genome; ``label_column`` and ``split_column`` are 1-based
    (4 is the name column).

    With ``length`` and ``resize: center`` a BED of positions is read at any context: the task
    suite's ``genic_chr20`` keeps one position per record and its recipes choose the window.
    """
    for column, what in ((label_column, "label_column"), (split_column, "split_column")):
        if column is not None and column < 4:
            raise HyenaDNAError(f"{what} must be 4 or more (columns 1-3 are coordinates), got {column}")
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    for region in read_bed(path):
        label = _bed_column(region, label_column, "label")
        split = None
        if split_column:
            value = _bed_column(region, split_column, "split")
            if not value.strip():
                raise HyenaDNAError(f"{region.where}: empty split in column {split_column} (use train, val or test)")
            split = _split_name(value, region.where)
        seq = region_sequence(genome, region, length, resize, flank)
        yield LabelledRecord(region.label(), seq, _split_labels(label, label_separator), split, region.where)


def _bed_column(region, column: int, what: str) -> str:
    """Column ``column`` (1-based, 4 or more) of a BED region, or an error naming the line."""
    fields = (region.name, region.score, region.strand, *region.extra)
    if column - 4 >= len(fields) or fields[column - 4] is None:
        raise HyenaDNAError(f"{region.where}: no column {column} for the {what}")
    return fields[column - 4]


def read_genomic_benchmarks(root: str | os.PathLike, split: str) -> Iterator[LabelledRecord]:
    """Records of one split (``train`` or ``test``) of a Genomic Benchmarks dataset folder.

    Class folders are read in name order and files in name order, so the records (and the label
    ids, which the vocabulary sorts the same way) are stable across machines.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise HyenaDNAError(f"{root}: no {split}/ folder (expected <root>/{split}/<class>/*.txt)")
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise HyenaDNAError(f"{folder}: no class folders")
    for class_dir in classes:
        files = sorted(class_dir.glob("*.txt"))
        if not files:
            raise HyenaDNAError(f"{class_dir}: no .txt sequence files")
        for file in files:
            seq = "".join(file.read_text(encoding="ascii", errors="strict").split())
            if not seq:
                raise HyenaDNAError(f"{file}: empty sequence file")
            yield LabelledRecord(
                f"{class_dir.name}/{file.stem}", seq, (class_dir.name,), _split_name(split, str(file)), str(file)
            )


def read_class_files(files: dict[str, str | os.PathLike]) -> Iterator[LabelledRecord]:
    """Records of one FASTA per class (``{"bound": "pos.fa", "unbound": "neg.fa"}``), the
    layout of gkm-SVM, DeepBind and many peak-calling workflows."""
    if len(files) < 1:
        raise HyenaDNAError("class files: give at least one {class: FASTA} pair")
    for label, path in files.items():
        for record in read_fasta_records(path):
            where = f"{path}, line {record.line} (record {record.name!r})"
            yield LabelledRecord(record.name, record.sequence, (str(label),), where=where)


def read_labelled(
    path: str | os.PathLike | dict[str, str | os.PathLike], format: str = "auto", **options
) -> list[LabelledRecord]:
    """Read any supported format; ``auto`` picks by extension (a folder is Genomic Benchmarks,
    a ``{class: FASTA}`` mapping is one file per class)."""
    if isinstance(path, dict):
        records = list(read_class_files(path))
        if not records:
            raise HyenaDNAError(f"{path}: no labelled sequences")
        return records
    path = Path(path)
    fmt = format if format != "auto" else _guess_format(path)
    readers = {
        "table": read_labelled_table,
        "fasta": read_labelled_fasta,
        "bed": read_labelled_bed,
    }
    if fmt == "genomic_benchmarks":
        split = options.pop("split", None)
        splits = [split] if split else [s for s in ("train", "test") if (path / s).is_dir()]
        records = [r for s in splits for r in read_genomic_benchmarks(path, s, **options)]
    elif fmt in readers:
        try:
            records = list(readers[fmt](path, **options))
        except TypeError as exc:
            raise HyenaDNAError(f"{path}: bad options for the {fmt} reader ({exc})") from None
    else:
        raise HyenaDNAError(f"unknown labelled format {fmt!r}; use table, fasta, bed or genomic_benchmarks")
    if not records:
        raise HyenaDNAError(f"{path}: no labelled sequences")
    return records


def _guess_format(path: Path) -> str:
    if path.is_dir():
        return "genomic_benchmarks"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "table"
    if name.endswith((".fa", ".fasta", ".fna", ".fas")):
        return "fasta"
    if name.endswith(".bed"):
        return "bed"
    raise HyenaDNAError(f"{path}: cannot tell the format from the name; pass format=table|fasta|bed|genomic_benchmarks")


def _natural_key(name: str) -> tuple:
    """Numbers sort by value ("2" before "10"), everything else by text."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


@dataclass
class LabelVocab:
    """The task and its output names: classes (multi-class, multi-label) or targets (regression)."""

    task: Task
    names: list[str]

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise HyenaDNAError(f"task must be one of {TASKS}, got {self.task!r}")
        if len(set(self.names)) != len(self.names):
            raise HyenaDNAError(f"label names must be unique, got {self.names}")
        if self.task == "multiclass" and len(self.names) < 2:
            raise HyenaDNAError(f"a multi-class task needs at least 2 classes, got {self.names}")
        self._index = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def fit(
        cls, records: Iterable[LabelledRecord], task: Task, target_names: Sequence[str] | None = None
    ) -> LabelVocab:
        """Classes sorted naturally ("2" before "10"); regression targets named by ``target_names``.
        An empty label (a blank cell, ``label=``) is an error naming its record, not a class."""
        records = list(records)
        for r in records:
            if task != "multilabel" and (not r.label or any(value == "" for value in r.label)):
                raise HyenaDNAError(f"{r.where}: empty label")
        if task == "regression":
            width = {len(r.label) for r in records}
            if len(width) != 1:
                raise HyenaDNAError(f"regression records have different numbers of targets: {sorted(width)}")
            n = width.pop()
            names = list(target_names) if target_names else [f"target_{i}" for i in range(n)]
            if len(names) != n:
                raise HyenaDNAError(f"{len(names)} target names for {n} targets")
            return cls(task, names)
        if task == "multiclass":
            for r in records:
                if len(r.label) != 1:
                    raise HyenaDNAError(f"{r.where}: a multi-class record needs exactly one label, got {r.label}")
        classes = sorted({c for r in records for c in r.label}, key=_natural_key)
        return cls(task, classes)

    @property
    def num_outputs(self) -> int:
        return len(self.names)

    def encode(self, record: LabelledRecord) -> np.ndarray:
        """The target: class index (int64 scalar), multi-hot float32, or float32 values."""
        if self.task == "regression":
            if len(record.label) != len(self.names):
                raise HyenaDNAError(
                    f"{record.where}: expected {len(self.names)} target values, got {len(record.label)}"
                )
            try:
                values = np.asarray([float(v) for v in record.label], dtype=np.float32)
            except ValueError:
                raise HyenaDNAError(f"{record.where}: regression targets must be numbers, got {record.label}") from None
            if not np.isfinite(values).all():
                raise HyenaDNAError(f"{record.where}: regression targets must be finite numbers, got {record.label}")
            return values
        unknown = [c for c in record.label if c not in self._index]
        if unknown:
            raise HyenaDNAError(f"{record.where}: unknown label {unknown[0]!r}; known labels are {self.names}")
        if self.task == "multiclass":
            if len(record.label) != 1:
                raise HyenaDNAError(f"{record.where}: a multi-class record needs exactly one label, got {record.label}")
            return np.asarray(self._index[record.label[0]], dtype=np.int64)
        hot = np.zeros(len(self.names), dtype=np.float32)
        hot[[self._index[c] for c in record.label]] = 1.0
        return hot

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabelVocab:
        return cls(task=data["task"], names=list(data["names"]))

    def save_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> LabelVocab:
        return cls.from_dict(json.loads(Path(path).read_text()))


def stratified_split(
    records: Sequence[LabelledRecord], fraction: float, seed: int = 0, stratify: bool = True
) -> tuple[list[LabelledRecord], list[LabelledRecord]]:
    """Split off ``fraction`` of the records (for validation), stratified by the single label when
    every class has at least two members; multi-label and regression records split at random."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise HyenaDNAError(f"validation fraction must lie in (0, 1), got {fraction}")
    records = list(records)
    if len(records) < 2:
        raise HyenaDNAError("need at least 2 records to split off a validation set")
    labels = [r.label[0] if len(r.label) == 1 else None for r in records]
    counts: dict = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    use_strata = stratify and None not in counts and min(counts.values()) >= 2
    n_val = max(1, round(len(records) * fraction))
    if use_strata and n_val < len(counts):
        use_strata = False
    index = np.arange(len(records))
    keep, held = train_test_split(index, test_size=n_val, random_state=seed, stratify=labels if use_strata else None)
    return [records[i] for i in sorted(keep)], [records[i] for i in sorted(held)]


def sequence_input_files(source: str | dict[str, str]) -> list[str]:
    """The files of a :func:`read_sequence_input` source (one path, or one per label)."""
    return [source] if isinstance(source, str) else list(source.values())


def read_sequence_input(
    source: str | dict[str, str], format: str = "auto", reader: dict | None = None, split: str | None = None
) -> tuple[list[str], list[str], list[tuple[str, ...]] | None]:
    """Sequences to predict on or explain: names, sequences and labels (None for a plain FASTA,
    whose headers carry no ``label=``). ``source`` is a FASTA, or anything :func:`read_labelled`
    reads with ``format`` and the ``reader`` options; ``split`` keeps the records of one split
    (train, val or test) of a file with a split column."""
    reader = reader or {}
    plain_fasta = isinstance(source, str) and not reader and format in ("auto", "fasta")
    if (
        plain_fasta
        and Path(source).is_file()
        and Path(source).name.lower().removesuffix(".gz").endswith((".fa", ".fasta", ".fna", ".fas"))
    ):
        first = next(read_fasta_records(source))
        if "label=" not in first.header:
            if split:
                raise HyenaDNAError(f"{source}: a plain FASTA has no splits to choose {split!r} from")
            records = list(read_fasta_records(source))
            return [r.name for r in records], [r.sequence for r in records], None
    labelled = list(read_labelled(source, format, **reader))
    if split:
        wanted = SPLIT_NAMES.get(split.lower(), split)
        labelled = [r for r in labelled if r.split == wanted]
        if not labelled:
            raise HyenaDNAError(f"{source}: no records in split {split!r}")
    return [r.name for r in labelled], [r.sequence for r in labelled], [r.label for r in labelled]
