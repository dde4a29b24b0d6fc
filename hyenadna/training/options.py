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

__all__ = [
    "CNN_NAME",
    "FinetuneOptions",
    "LabelledData",
    "ModelOptions",
    "PretrainData",
    "SearchOptions",
    "TrainerOptions",
]


def _optional_positive(option: str, value: int | None) -> None:
    if value is not None:
        positive(option, value)


CNN_NAME = "cnn"
"""``model.name_or_path`` that trains the :mod:`hyenadna.heads.cnn` baseline instead of a Hyena model."""


@dataclass
class ModelOptions:
    """Which model to start from.

    Attributes:
        name_or_path: a preset (random weights: tiny-1k, small-32k, medium-160k, medium-450k,
            large-1m...), a bundled pretrained model (tiny-1k-chr20), a folder saved by hyenadna,
            a released HyenaDNA checkpoint folder, or (fine-tuning only) ``cnn``: the
            convolutional baseline of :mod:`hyenadna.heads.cnn`.
        overrides: config fields to change, e.g. ``{checkpoint_mixer: true, l_max: 4096}``.
        deepen_to: grow the model to this many Hyena blocks before training, the new blocks
            interleaved with the old and initialised as the identity, so a pretrained model
            keeps its predictions and gains capacity (:mod:`hyenadna.model.deepen`). Positive
            layer numbers (``head.layer``, ``embed --layer``) then count the grown stack.
    """

    name_or_path: str = "tiny-1k"
    overrides: dict[str, Any] = field(default_factory=dict)
    deepen_to: int | None = None

    def __post_init__(self) -> None:  # checked as the options are read: a refused run creates nothing
        _optional_positive("--model.deepen_to", self.deepen_to)
        if self.deepen_to is not None and self.name_or_path == CNN_NAME:
            raise HyenaDNAError("--model.deepen_to grows a Hyena model; the cnn baseline has no Hyena blocks")


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
            ``bf16-mixed`` on a CPU keeps the fused training functions, their matrix products
            in bfloat16 (:mod:`hyenadna.ops.precision`): faster where the CPU has AMX
            (``runtime.cpu_amx`` in the run's summary); without it the products are emulated, and a
            warning says so.
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
        train_eval_windows: training windows scored at every validation beside the held-out
            ones (0: none): ``val/train_bits_per_base`` and ``val/gap`` (held-out minus
            training, bits/base) show a model starting to memorise a small genome. Needs a
            validation split (without one, nothing is validated).
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
    train_eval_windows: int = 0
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
        integer("--data.train_eval_windows", self.train_eval_windows, low=0)
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
        calibrate: after training, fit a scale on the logits and a bias per class on the
            validation split (bias-corrected temperature scaling; Platt scaling per label for
            multi-label tasks), saved with the model as ``calibration.json``: its probabilities
            and decisions then follow the validation split's class shares, not the training
            split's. metrics.json keeps the model's own ``test`` metrics and adds
            ``test_calibrated``. Classifiers only; ``hyenadna calibrate --run RUN`` does the same for
            a finished run. The CNN baseline (``cnn_baseline``) is not calibrated.
    """

    freeze_backbone: bool = False
    backbone_lr_scale: float = 0.1
    monitor: str | None = None
    patience: int = 3
    baseline: bool = True
    cnn_baseline: bool = False
    calibrate: bool = False

    def __post_init__(self) -> None:
        number("--tuning.backbone_lr_scale", self.backbone_lr_scale, low=0.0)
        integer("--tuning.patience", self.patience, low=0)


@dataclass
class SearchOptions:
    """What ``hyenadna tune`` searches, how long each trial trains, and how the best recipe is
    retrained. Trials are judged on the validation split; the test split is evaluated once per
    seed of the final retraining.

    Attributes:
        space: the options to vary: a YAML file (see ``configs/search/finetune.yaml`` and
            :mod:`hyenadna.training.search_space`) or the mapping itself; default: learning
            rate, backbone learning-rate scale, weight decay, warm-up, pooling, strand
            conjoining and batch size.
        trials: finished trials (complete or pruned) the study should hold when the search
            ends, counted over every launch and every process sharing the study; a launch runs
            at most this many more trials, failed ones included.
        trial_tokens: training bases per trial: its optimiser steps are this over (batch size
            x gradient accumulation x mean training length), and the learning-rate schedule,
            warm-up included, spans them. The budget is the same for every trial whatever its
            batch size.
        trial_minutes: a wall-clock cap on each trial's training (on top of ``trial_tokens``;
            alone, the recipe's step or epoch limits bound the trial).
        timeout_minutes: start no trial after this long in this launch (None: no limit).
        val_checks: validation checks per trial: the points the pruner judges a trial by.
        sampler: ``tpe`` (Optuna's default, seeded by ``--seed``) or ``random``.
        startup_trials: trials drawn at random before the sampler models the space, and
            finished before any trial is pruned.
        enqueue: points to try first (say the recipe's own values), each a mapping of
            space keys to values, keys left out sampled; queued when the study is created,
            not again on resuming.
        pruner: ``median`` (stop a trial whose validation metric is worse than the median of
            earlier trials at the same validation check, from the second check on),
            ``hyperband`` or ``none``.
        storage: an Optuna storage URL shared by several processes or machines (e.g.
            ``postgresql://user@host/db``); default: ``sqlite:///OUTPUT/study.db``.
        study_name: the study's name in the storage.
        seeds: seeds the best recipe is retrained with, each run tested once.
        final_tokens: training bases of each final run (None: the recipe's own limits, its
            epochs an upper bound, early stopping ending the run on a validation plateau).
        final: retrain the best recipe once the study is done; false for extra worker
            processes sharing a study (one launch with ``final: true`` retrains at the end,
            after waiting for the trials the others are still running).
        min_gain: the best trial replaces the first enqueued one (the recipe you came with)
            only if its validation score is better by more than this; else the enqueued one is
            retrained. 0: the best always wins. On a small validation split, where a metric's
            noise is several hundredths, a margin such as 0.02 keeps noise from choosing.
        confirm: before retraining, run the best ``confirm`` complete trials, and the first
            enqueued one, again on each of ``confirm_seeds`` at the trial budget (validation
            only, into ``OUTPUT/confirm/``); the trial retrained is then the one with the best
            mean over its seeds, ``min_gain`` comparing means. 0: one run per trial decides.
        confirm_seeds: the seeds of those reruns (the search's own ``--seed`` is the first run).
        folds: 0 judges each trial on the validation split; K >= 2 pools the training and
            validation records, cuts them into K contiguous blocks in file order (within each
            class of a single-label classifier; see :mod:`hyenadna.data.folds`) and judges a
            trial by its mean best validation metric over the K folds, each trained at the
            full trial budget (K times the cost). For small data, whose validation split ranks
            recipes by noise; the pruner reads the first fold's curve. The final runs use the
            data's own splits. A study keeps the fold count it was made with.
    """

    space: str | dict[str, Any] | None = None
    trials: int = 20
    trial_tokens: int | None = 2_000_000
    trial_minutes: float | None = None
    timeout_minutes: float | None = None
    val_checks: int = 4
    sampler: str = "tpe"
    startup_trials: int = 5
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    pruner: str = "median"
    storage: str | None = None
    study_name: str = "hyenadna-tune"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    final_tokens: int | None = None
    final: bool = True
    min_gain: float = 0.0
    confirm: int = 0
    confirm_seeds: list[int] = field(default_factory=lambda: [1, 2])
    folds: int = 0

    def __post_init__(self) -> None:
        positive("--search.trials", self.trials)
        _optional_positive("--search.trial_tokens", self.trial_tokens)
        _optional_positive("--search.final_tokens", self.final_tokens)
        for option, minutes in (("trial_minutes", self.trial_minutes), ("timeout_minutes", self.timeout_minutes)):
            if minutes is not None:
                number(f"--search.{option}", minutes, low=0.0, open_low=True)
        if self.trial_tokens is None and self.trial_minutes is None:
            raise HyenaDNAError("set --search.trial_tokens or --search.trial_minutes: trials must have a budget")
        positive("--search.val_checks", self.val_checks)
        integer("--search.startup_trials", self.startup_trials, low=0)
        if self.sampler not in SAMPLERS:
            raise HyenaDNAError(f"--search.sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise HyenaDNAError(f"--search.pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if not self.study_name:
            raise HyenaDNAError("--search.study_name must not be empty")
        if not self.seeds:
            raise HyenaDNAError("--search.seeds needs at least one seed")
        for seed in self.seeds:
            integer("--search.seeds", seed, 0, 2**32 - 1)
        number("--search.min_gain", self.min_gain, low=0.0)
        if len(set(self.seeds)) != len(self.seeds):
            raise HyenaDNAError(f"--search.seeds repeats a seed: {self.seeds}")
        integer("--search.confirm", self.confirm, low=0)
        for seed in self.confirm_seeds:
            integer("--search.confirm_seeds", seed, 0, 2**32 - 1)
        integer("--search.folds", self.folds, low=0)
        if self.folds == 1:
            raise HyenaDNAError("--search.folds is 0 (the validation split judges) or at least 2, got 1")
        if self.confirm and (not self.confirm_seeds or len(set(self.confirm_seeds)) != len(self.confirm_seeds)):
            raise HyenaDNAError(f"--search.confirm needs distinct --search.confirm_seeds, got {self.confirm_seeds}")


SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
