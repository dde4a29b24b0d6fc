"""Torch datasets over labelled sequences and coverage-annotated reference windows, and the collator
that pads variable-length sequences into batches."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from hyenadna.data.bam import ReadFilter, coverage
from hyenadna.data.genome import Genome
from hyenadna.data.labels import LabelledRecord, LabelVocab
from hyenadna.data.tokenizer import CharacterTokenizer, Side, pad_ids, reverse_complement_ids
from hyenadna.errors import HyenaDNAError

Truncation = Literal["error", "left", "right", "center"]


def check_length(length: int, max_length: int, where: str) -> None:
    if length > max_length:
        raise HyenaDNAError(
            f"{where}: sequence of {length:,} bases is longer than max_length {max_length:,} "
            "(choose a truncation: left, right or center)"
        )


def truncate(ids: np.ndarray, max_length: int, how: Truncation, where: str) -> np.ndarray:
    """Cut ``ids`` to ``max_length``: keep the left, right or central part, or raise naming ``where``."""
    if ids.size <= max_length:
        return ids
    if how == "error":
        check_length(ids.size, max_length, where)
    if how == "right":
        return ids[:max_length]
    if how == "left":
        return ids[ids.size - max_length :]
    if how == "center":
        start = (ids.size - max_length) // 2
        return ids[start : start + max_length]
    raise HyenaDNAError(f"truncation must be error, left, right or center, got {how!r}")


class LabelledDataset(Dataset):
    """Token ids and targets of labelled records.

    Targets are encoded when the dataset is built, so an unknown label or a bad value is reported
    (with its file and line) before training starts, not in a worker halfway through an epoch.
    ``truncation`` says what to keep of a sequence longer than ``max_length``: ``right`` keeps the
    start, ``left`` the end, ``center`` the middle; ``error`` refuses it.
    """

    def __init__(
        self,
        records: Sequence[LabelledRecord],
        vocab: LabelVocab,
        tokenizer: CharacterTokenizer | None = None,
        max_length: int | None = None,
        truncation: Truncation = "error",
        rc_prob: float = 0.0,
    ) -> None:
        if not records:
            raise HyenaDNAError("no labelled records")
        self.rc_prob = rc_prob
        self.records = list(records)
        self.vocab = vocab
        self.tokenizer = tokenizer or CharacterTokenizer()
        self.max_length = max_length
        self.truncation = truncation
        self.targets = [vocab.encode(r) for r in self.records]
        if max_length is not None and truncation == "error":
            for r in self.records:
                check_length(len(r.sequence), max_length, r.where)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        ids = self.tokenizer.encode_bases(record.sequence, name=record.where or record.name)
        if self.max_length is not None:
            ids = truncate(ids, self.max_length, self.truncation, record.where)
        tokens = torch.from_numpy(ids)
        if self.rc_prob and float(torch.rand(())) < self.rc_prob:  # the global generator, seeded per run
            tokens = reverse_complement_ids(tokens)
        return {
            "input_ids": tokens,
            "target": torch.from_numpy(np.asarray(self.targets[index])),
            "index": torch.tensor(index),
        }


class PadCollator:
    """Pad a list of dataset items into a batch: ``input_ids`` (B, W) with ``[PAD]``, a bool
    ``attention_mask``, and every other field stacked.

    ``pad_to_multiple_of`` rounds the width up (fewer distinct shapes, fewer FFT plans).
    """

    def __init__(self, padding_side: Side = "left", pad_to_multiple_of: int | None = None) -> None:
        if padding_side not in ("left", "right"):
            raise HyenaDNAError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        rows = [item["input_ids"].numpy() for item in items]
        width = max(len(r) for r in rows)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = pad_ids(rows, self.padding_side, width)
        for key in items[0]:
            if key != "input_ids":
                batch[key] = torch.stack([item[key] for item in items])
        return batch


class CoverageWindows(Dataset):
    """Strided reference windows with the per-base read depth of a BAM/CRAM over each.

    Items hold ``input_ids`` (length L) and ``coverage`` (float32, length L), for models that
    predict depth or use it as a track. Windows run along the chosen contigs every ``stride``.
    """

    def __init__(
        self,
        genome: Genome | str | os.PathLike,
        alignments: str | os.PathLike,
        length: int,
        contigs: Sequence[str] | None = None,
        stride: int | None = None,
        reference: str | os.PathLike | None = None,
        filters: ReadFilter | dict | None = None,
        tokenizer: CharacterTokenizer | None = None,
    ) -> None:
        self.genome = genome if isinstance(genome, Genome) else Genome(genome)
        self.alignments = alignments
        self.length = length
        self.reference = reference
        self.filters = filters
        self.tokenizer = tokenizer or CharacterTokenizer()
        stride = stride or length
        chosen = self.genome.select_contigs(list(contigs) if contigs else None)
        self.windows = [
            (contig, start) for contig in chosen for start in range(0, self.genome.contigs[contig] - length + 1, stride)
        ]
        if not self.windows:
            raise HyenaDNAError(f"{self.genome.path}: no window of {length:,} bases fits the chosen contigs")

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        contig, start = self.windows[index]
        end = start + self.length
        ids = self.tokenizer.encode_bases(self.genome.fetch(contig, start, end), name=f"{contig}:{start}")
        depth = coverage(self.alignments, contig, start, end, self.reference, self.filters)
        return {"input_ids": torch.from_numpy(ids), "coverage": torch.from_numpy(depth.astype(np.float32))}
