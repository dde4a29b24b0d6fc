"""Option groups of the pipelines, as dataclasses: what ``--help`` and YAML recipes show.

Kept free of Lightning imports so that the command line starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyenadna.checks.values import integer, number, positive
from hyenadna.data.corpus import GenomeSource
from hyenadna.data.windows import LengthStage
from hyenadna.errors import HyenaDNAError

__all__ = ["FinetuneOptions", "LabelledData", "ModelOptions", "PretrainData", "TrainerOptions"]


def _optional_positive(option: str, value: int | None) -> None:
    if value is not None:
        positive(option, value)


@dataclass
class ModelOptions:
    """Which model to start from.

    Attributes:
        name_or_path: a preset (random weights: tiny-1k, small-32k, medium-160k, medium-450k,
            large-1m...), a bundled pretrained model (tiny-1k-chr20), a folder saved by hyenadna,
            a released HyenaDNA checkpoint folder, or (fine-tuning only) ``cnn``: the
            convolutional baseline of :mod:`hyenadna.heads.cnn`.
        overrides: config fields to change, e.g. ``{checkpoint_mixer: true, l_max: 4096}``.
    """

    name_or_path: str = "tiny-1k"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainerOptions:
    """Lightning Trainer settings; distribution (DDP, FSDP, several nodes) is Lightning's own.

    Attributes:
        max_steps: optimiser steps to train for (-1: no limit; ``max_epochs`` then decides).
        max_epochs: stop after this many epochs as well (-1: only ``max_steps`` counts). The
            learning-rate schedule spans whichever limit comes first (one of them must be set).
        accelerator: ``auto``, ``cpu``, ``gpu``...
        devices: number of devices, a list of ids, or ``auto``.
        strategy: ``auto``, ``ddp``, ``fsdp``, ``ddp_spawn``...
        num_nodes: machines taking part.
        precision: ``auto`` (bf16-mixed on GPUs that support it, else 32-true), or any
            Lightning precision (``16-mixed``, ``32-true``...). The FFT always runs in float32.
        accumulate_grad_batches: batches per optimiser step.
        val_every_n_steps: validate every N training steps (0: at the end of each epoch).
        limit_val_batches: validation batches per check (an int, or a fraction).
        checkpoint_every_n_steps: keep a checkpoint every N steps (``last.ckpt`` always follows).
        log_every_n_steps: how often to log training metrics.
        progress_bar: show a progress bar.
        deterministic: ask torch for deterministic kernels.
    """

    max_steps: int = 1000
    max_epochs: int = -1
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "auto"
    accumulate_grad_batches: int = 1
    val_every_n_steps: int = 0
    limit_val_batches: int | float = 1.0
    checkpoint_every_n_steps: int = 500
    log_every_n_steps: int = 10
    progress_bar: bool = True
    deterministic: bool = False

    def __post_init__(self) -> None:  # checked as the options are read: a refused run creates nothing
        for option, value in (("max_steps", self.max_steps), ("max_epochs", self.max_epochs)):
            if integer(f"--trainer.{option}", value, low=-1) == 0:
                raise HyenaDNAError(f"--trainer.{option} must be -1 (no limit) or positive, got 0")
        if self.max_steps == -1 and self.max_epochs == -1:
            raise HyenaDNAError(
                "set --trainer.max_steps or --trainer.max_epochs: with both -1 the run never ends, and the "
                "learning-rate schedule needs a length"
            )
        positive("--trainer.num_nodes", self.num_nodes)
        positive("--trainer.accumulate_grad_batches", self.accumulate_grad_batches)
        positive("--trainer.log_every_n_steps", self.log_every_n_steps)
        integer("--trainer.val_every_n_steps", self.val_every_n_steps, low=0)
        integer("--trainer.checkpoint_every_n_steps", self.checkpoint_every_n_steps, low=0)
        if isinstance(self.limit_val_batches, float):
            number("--trainer.limit_val_batches", self.limit_val_batches, 0.0, 1.0)
        else:
            integer("--trainer.limit_val_batches", self.limit_val_batches, low=0)


@dataclass
class PretrainData:
    """Genomes and windows.

    Attributes:
        genomes: one entry per genome: ``path`` and optionally ``weight``, ``include``,
            ``exclude``, ``pattern``, ``min_length``, ``val_contigs``, ``test_contigs``,
            ``val_fraction``, ``test_fraction``, ``soft_mask``.
        length: bases per training window (at most the model's l_max).
        batch_size: windows per batch (per device).
        samples_per_epoch: training windows per epoch.
        rc_prob: probability of reverse-complementing a window.
        max_n_fraction: windows with a larger share of N are redrawn (training) or skipped.
        val_stride: bases between validation windows (default: ``length``).
        val_max_windows: cap on validation windows (evenly thinned).
        num_workers: DataLoader worker processes.
        length_warmup: stages of shorter windows first, e.g. ``[{length: 256, epochs: 1}]``.
    """

    genomes: list[GenomeSource] = field(default_factory=list)
    length: int = 1024
    batch_size: int = 8
    samples_per_epoch: int = 1024
    rc_prob: float = 0.5
    max_n_fraction: float = 0.1
    val_stride: int | None = None
    val_max_windows: int | None = 256
    num_workers: int = 0
    length_warmup: list[LengthStage] = field(default_factory=list)

    def __post_init__(self) -> None:
        positive("--data.length", self.length)
        positive("--data.batch_size", self.batch_size)
        positive("--data.samples_per_epoch", self.samples_per_epoch)
        number("--data.rc_prob", self.rc_prob, 0.0, 1.0)
        number("--data.max_n_fraction", self.max_n_fraction, 0.0, 1.0)
        _optional_positive("--data.val_stride", self.val_stride)
        _optional_positive("--data.val_max_windows", self.val_max_windows)
        integer("--data.num_workers", self.num_workers, low=0)


@dataclass
class LabelledData:
    """Labelled sequences.

    Attributes:
        train: a file (CSV/TSV, FASTA with labels, BED), a Genomic Benchmarks folder, or a
            mapping ``{class: FASTA}`` with one file per class.
        val: the validation split in any of train's forms (else a split column, or a
            stratified ``val_fraction`` of train).
        test: the test split in any of train's forms (else a split column or the Genomic
            Benchmarks test folder).
        task: ``multiclass``, ``multilabel`` or ``regression``.
        format: ``auto``, ``table``, ``fasta``, ``bed`` or ``genomic_benchmarks``.
        reader: options of the reader (``sequence_col``, ``label_cols``, ``split_col``,
            ``label_from``, ``genome``, ``label_column``, ``length``, ``resize``...).
        target_names: names of regression targets.
        val_fraction: share of train held out for validation when no validation set is given.
        batch_size: sequences per batch.
        rc_prob: probability of reverse-complementing a training sequence (augmentation; labels
            must not depend on the strand).
        max_length: longest sequence in bases (default: the model's l_max).
        truncation: for longer ones: ``error``, ``right`` (keep the start), ``left``, ``center``.
        padding_side: ``right`` (exact for a causal model) or ``left`` (as HyenaDNA's scripts).
        num_workers: DataLoader worker processes.
    """

    train: str | dict[str, str] = ""
    val: str | dict[str, str] | None = None
    test: str | dict[str, str] | None = None
    task: str = "multiclass"
    format: str = "auto"
    reader: dict[str, Any] = field(default_factory=dict)
    target_names: list[str] | None = None
    val_fraction: float = 0.1
    batch_size: int = 32
    rc_prob: float = 0.0
    max_length: int | None = None
    truncation: str = "error"
    padding_side: str = "right"
    num_workers: int = 0

    def __post_init__(self) -> None:
        number("--data.val_fraction", self.val_fraction, 0.0, 1.0)
        if self.val_fraction >= 1:
            raise HyenaDNAError(
                f"--data.val_fraction must be below 1 (some training data must stay), got {self.val_fraction:g}"
            )
        positive("--data.batch_size", self.batch_size)
        number("--data.rc_prob", self.rc_prob, 0.0, 1.0)
        _optional_positive("--data.max_length", self.max_length)
        integer("--data.num_workers", self.num_workers, low=0)
        if self.truncation not in ("error", "right", "left", "center"):
            raise HyenaDNAError(f"--data.truncation must be error, right, left or center, got {self.truncation!r}")
        if self.padding_side not in ("right", "left"):
            raise HyenaDNAError(f"--data.padding_side must be right or left, got {self.padding_side!r}")


@dataclass
class FinetuneOptions:
    """How to train the backbone and when to stop.

    Attributes:
        freeze_backbone: train the head only (a linear probe).
        backbone_lr_scale: the backbone's learning rate is ``optim.lr`` times this.
        monitor: validation metric for early stopping and the best checkpoint (default: MCC
            for multi-class, AUROC for multi-label, Pearson for regression).
        patience: validation checks without improvement before stopping (0: never stop early).
        baseline: also fit the k-mer logistic-regression baseline on the same split (its C
            chosen on the validation split).
        cnn_baseline: also train the convolutional baseline (:mod:`hyenadna.heads.cnn`) on the same
            splits with the same optimiser, schedule and early stopping (in ``output/cnn_baseline``).
    """

    freeze_backbone: bool = False
    backbone_lr_scale: float = 0.1
    monitor: str | None = None
    patience: int = 3
    baseline: bool = True
    cnn_baseline: bool = False

    def __post_init__(self) -> None:
        number("--tuning.backbone_lr_scale", self.backbone_lr_scale, low=0.0)
        integer("--tuning.patience", self.patience, low=0)
