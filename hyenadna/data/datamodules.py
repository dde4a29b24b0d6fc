"""Lightning DataModules: genome windows for pretraining, labelled sequences for fine-tuning.

Distribution across GPUs and nodes is Lightning's: it wraps our loaders in a DistributedSampler.
Our part is to make each item a pure function of its index (and the epoch), so every split of
the indices among ranks adds up to what one process would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from hyenadna.data.corpus import Corpus, GenomeSource
from hyenadna.data.datasets import LabelledDataset, PadCollator, Truncation
from hyenadna.data.folds import check_fold, fold_split
from hyenadna.data.labels import LabelledRecord, LabelVocab, Task, read_labelled, stratified_split
from hyenadna.data.tokenizer import CharacterTokenizer, Side, length_batches
from hyenadna.data.windows import LengthStage, RandomWindows, StridedWindows
from hyenadna.errors import HyenaDNAError


class ResumableSampler(DistributedSampler):
    """Indices of this rank in order, optionally starting ``start`` indices into the epoch.

    Its length stays the whole epoch's: a resumed Lightning loop counts its restored batch index
    against the loader's length, so a shortened length would end the epoch early (resuming
    after 6 of 16 batches ran 4 more, not 10); the loop ends when the indices run out instead.
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=True)
        self.start = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples


def _completed_batches(trainer, batches_per_epoch: int) -> int:
    """Batches of the current epoch a resumed run already trained on (0 on a fresh epoch).

    A checkpoint written at the end of a training batch counts that batch as processed (its
    optimiser step is in the weights) but not yet completed, so ``processed`` is the count.
    """
    if trainer is None or not trainer.fit_loop.restarting:
        return 0
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return done if 0 < done < batches_per_epoch else 0


class PretrainDataModule(L.LightningDataModule):
    """Random training windows and strided validation/test windows over a corpus of genomes.

    Args:
        genomes: one :class:`GenomeSource` (or dict of its fields) per genome.
        length: model input length; each window reads ``length + 1`` bases.
        samples_per_epoch: training windows per epoch (over all ranks together).
        rc_prob: probability of reverse-complementing a training window.
        max_n_fraction: windows with more N than this are redrawn (training) or skipped (validation).
        val_stride / val_max_windows: validation windows every ``val_stride`` bases (default:
            ``length``), thinned evenly to at most ``val_max_windows``.
        train_eval_windows: this many training windows, laid out like the validation ones over
            the training split, scored at every validation as a second loader (0: none). The
            same bases each time, so held-out minus training bits per base tracks memorisation.

    The epoch of the training windows follows ``trainer.current_epoch``; the pretraining
    pipeline sets ``reload_dataloaders_every_n_epochs=1`` so each epoch gets its own windows.
    """

    def __init__(
        self,
        genomes: Sequence[GenomeSource | dict],
        length: int = 1024,
        batch_size: int = 8,
        samples_per_epoch: int = 1024,
        seed: int = 0,
        rc_prob: float = 0.0,
        max_n_fraction: float = 0.1,
        val_stride: int | None = None,
        val_max_windows: int | None = 256,
        train_eval_windows: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        length_warmup: Sequence[LengthStage | dict] = (),
    ) -> None:
        super().__init__()
        self.sources = [g if isinstance(g, GenomeSource) else GenomeSource(**g) for g in genomes]
        self.save_hyperparameters({"genomes": [asdict(s) | {"path": str(s.path)} for s in self.sources]})
        self.length = length
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.rc_prob = rc_prob
        self.max_n_fraction = max_n_fraction
        self.val_stride = val_stride
        self.val_max_windows = val_max_windows
        self.train_eval_windows = train_eval_windows
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.length_warmup = [st if isinstance(st, LengthStage) else LengthStage(**st) for st in length_warmup]
        for stage in self.length_warmup:
            if not 1 <= stage.length <= length or length % stage.length:
                raise HyenaDNAError(f"warmup length {stage.length} must divide the final length {length}")
        self.corpus: Corpus | None = None
        self._train_sets: dict[int, RandomWindows] = {}
        self._eval_sets: dict[str, StridedWindows | None] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is None:
            self.corpus = Corpus(self.sources)
            self.train_windows(self.length)  # fail early if no window fits

    def stage(self, epoch: int) -> tuple[int, int, int]:
        """(window length, batch size, windows per epoch) for ``epoch``: the warmup stages
        first, then the final length. Tokens per step stay constant across stages."""
        first = 0
        for stage in self.length_warmup:
            if epoch < first + stage.epochs:
                factor = self.length // stage.length
                return stage.length, self.batch_size * factor, self.samples_per_epoch * factor
            first += stage.epochs
        return self.length, self.batch_size, self.samples_per_epoch

    def train_windows(self, length: int, samples: int | None = None) -> RandomWindows:
        assert self.corpus is not None, "call setup() first"
        if length not in self._train_sets:
            self._train_sets[length] = RandomWindows(
                self.corpus,
                length,
                samples or self.samples_per_epoch,
                seed=self.seed,
                max_n_fraction=self.max_n_fraction,
                rc_prob=self.rc_prob,
            )
        return self._train_sets[length]

    @property
    def train_set(self) -> RandomWindows:
        return self.train_windows(self.length)

    def _eval_set(self, split: str) -> StridedWindows | None:
        if split not in self._eval_sets:
            assert self.corpus is not None, "call setup() first"
            if not self.corpus.intervals(split):
                self._eval_sets[split] = None
            else:
                self._eval_sets[split] = StridedWindows(
                    self.corpus,
                    self.length,
                    split=split,
                    stride=self.val_stride,
                    max_n_fraction=self.max_n_fraction,
                    max_windows=self.train_eval_windows if split == "train" else self.val_max_windows,
                )
        return self._eval_sets[split]

    def _generator(self) -> torch.Generator:
        """A loader's own random generator: without one, every DataLoader iterator draws its
        worker seed from torch's global generator, which dropout uses too, so a resumed run
        (which makes an extra iterator) would draw other dropout masks than the straight one."""
        return torch.Generator().manual_seed(self.seed)

    def _loader(self, dataset, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            generator=self._generator(),
        )

    def train_dataloader(self) -> DataLoader:
        """This epoch's windows, sharded over ranks, starting where a resumed run stopped.

        The pretraining pipeline reloads this loader every epoch. The sampler is a
        DistributedSampler without shuffling (windows are already random), so Lightning keeps
        it; on a resumed run it starts after the batches the checkpoint had completed.
        """
        trainer = self.trainer
        epoch = trainer.current_epoch if trainer is not None else 0
        length, batch_size, samples = self.stage(epoch)
        dataset = self.train_windows(length, samples)
        dataset.set_epoch(epoch)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank)
        sampler.start = batch_size * _completed_batches(trainer, len(sampler) // batch_size)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=True,
            generator=self._generator(),
        )

    def val_dataloader(self) -> DataLoader | list:
        """The held-out windows; with ``train_eval_windows``, the training windows as a second
        loader (none without a validation split: there is nothing to compare them with)."""
        dataset = self._eval_set("val")
        if dataset is None:
            return []
        if not self.train_eval_windows:
            return self._loader(dataset)
        return [self._loader(dataset), self._loader(self._eval_set("train"))]

    def test_dataloader(self) -> DataLoader | list:
        dataset = self._eval_set("test")
        if dataset is None:
            raise HyenaDNAError("the corpus has no test split: set test_contigs or test_fraction")
        return self._loader(dataset)


class LabelledDataModule(L.LightningDataModule):
    """Labelled sequences for fine-tuning, from any format :func:`read_labelled` reads.

    Splits come from, in order: separate ``val`` / ``test`` files; a split column (or the
    Genomic Benchmarks train/test folders) in the ``train`` file; and, for a missing validation
    set, a stratified ``val_fraction`` of the training records. With ``fold = (k, K)`` (a
    tuning trial's cross-validation) the training and validation records are pooled in the order
    read and split into K blocks instead (:mod:`hyenadna.data.folds`): the k-th validates, the
    rest train; the test split is left as it is. The label vocabulary is fitted on
    the training records unless one is given (a fine-tuned model's own), and labels of other
    splits that it lacks are an error naming the file and line.
    """

    def __init__(
        self,
        train: str | os.PathLike | dict[str, str],
        val: str | os.PathLike | dict[str, str] | None = None,
        test: str | os.PathLike | dict[str, str] | None = None,
        task: Task = "multiclass",
        format: str = "auto",
        reader: dict[str, Any] | None = None,
        target_names: list[str] | None = None,
        vocab: LabelVocab | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        batch_size: int = 32,
        max_length: int | None = None,
        truncation: Truncation = "error",
        padding_side: Side = "right",
        num_workers: int = 0,
        tokenizer: CharacterTokenizer | None = None,
        rc_prob: float = 0.0,
        fold: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.fold = check_fold(fold) if fold is not None else None
        if not 0 <= rc_prob <= 1:
            raise HyenaDNAError(f"rc_prob must lie in [0, 1], got {rc_prob}")
        self.rc_prob = rc_prob
        self.paths = {"train": train, "val": val, "test": test}
        self.task = task
        self.format = format
        self.reader = dict(reader or {})
        self.target_names = target_names
        self.vocab = vocab
        self.val_fraction = val_fraction
        self.seed = seed
        self.batch_size = batch_size
        self.max_length = max_length
        self.truncation = truncation
        self.num_workers = num_workers
        self.tokenizer = tokenizer or CharacterTokenizer()
        self.collate = PadCollator(padding_side)
        self.datasets: dict[str, LabelledDataset] = {}

    def read_splits(self) -> dict[str, list[LabelledRecord]]:
        """Records of each split, before any vocabulary (see the class docstring for the order)."""
        splits: dict[str, list[LabelledRecord]] = {"train": [], "val": [], "test": []}
        order = read_labelled(self.paths["train"], self.format, **self.reader)
        for record in order:
            splits[record.split or "train"].append(record)
        for split in ("val", "test"):
            if self.paths[split] is not None:
                if splits[split]:
                    raise HyenaDNAError(f"{self.paths['train']} already has {split} records; drop the {split} file")
                splits[split] = read_labelled(self.paths[split], self.format, **self.reader)
        if not splits["train"]:
            raise HyenaDNAError(f"{self.paths['train']}: no training records")
        if self.fold is not None:
            pooled = [r for r in order if r.split != "test"] + (splits["val"] if self.paths["val"] is not None else [])
            splits["train"], splits["val"] = fold_split(pooled, self.fold, stratify=self.task == "multiclass")
        elif not splits["val"] and self.val_fraction > 0:
            splits["train"], splits["val"] = stratified_split(
                splits["train"], self.val_fraction, self.seed, stratify=self.task == "multiclass"
            )
        return splits

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = self.read_splits()
        if self.vocab is None:
            self.vocab = LabelVocab.fit(splits["train"], self.task, self.target_names)
        elif self.vocab.task != self.task:
            raise HyenaDNAError(f"the given label vocabulary is for {self.vocab.task}, not {self.task}")
        for split, records in splits.items():
            if records:
                self.datasets[split] = LabelledDataset(
                    records, self.vocab, self.tokenizer, self.max_length, self.truncation,
                    rc_prob=self.rc_prob if split == "train" else 0.0,
                )  # fmt: skip

    def split_sizes(self) -> dict[str, int]:
        """Records per split that has any (``train``, and ``val`` / ``test`` where given), after setup."""
        return {split: len(dataset) for split, dataset in self.datasets.items()}

    def records(self, split: str) -> list[LabelledRecord]:
        """The records of ``split`` in their order, after setup."""
        return self.datasets[split].records

    def targets(self, split: str) -> np.ndarray:
        """The encoded targets of ``split``, one row per record, after setup."""
        return np.stack(self.datasets[split].targets)

    def longest_sequence(self) -> int:
        """The longest sequence of any split, in bases."""
        return max(len(r.sequence) for dataset in self.datasets.values() for r in dataset.records)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """Training: shuffled batches. Evaluation in one process: the batching engine's
        length-sorted batches (:func:`hyenadna.data.tokenizer.length_batches`), so little compute goes
        to padding; the metrics see every record once, whatever the order. Several processes
        keep plain batches, which Lightning shards with its distributed sampler."""
        if split not in self.datasets:
            raise HyenaDNAError(f"no {split} records (give a {split} file or a split column)")
        dataset = self.datasets[split]
        trainer = self.trainer
        if not shuffle and (trainer is None or trainer.world_size == 1):
            lengths = [min(len(r.sequence), self.max_length or len(r.sequence)) for r in dataset.records]
            batches = length_batches(lengths, self.batch_size)
            return DataLoader(dataset, batch_sampler=batches, num_workers=self.num_workers, collate_fn=self.collate)
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers, collate_fn=self.collate
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
