"""What a training command starts from, built from its options: the starting model, the data
module, and the task model a fine-tune trains. One place for each, so that no command prepares
another's."""

from __future__ import annotations

from dataclasses import asdict

import torch

from hyenadna.data.datamodules import LabelledDataModule, PretrainDataModule
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.cnn import ConvClassifier, ConvConfig
from hyenadna.heads.config import HeadConfig, HeadOptions
from hyenadna.heads.task_model import SequenceModel, TaskModel
from hyenadna.model.deepen import deepen
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.model.load import load
from hyenadna.training.options import LabelledData, ModelOptions, PretrainData


def initial_model(options: ModelOptions, seed: int) -> HyenaDNA:
    """The starting model: a preset with fresh weights (seeded) or a saved / released model, in
    float32 and in train mode (:func:`~hyenadna.model.load` gives eval mode, for inference),
    grown to ``options.deepen_to`` blocks where that is set."""
    torch.manual_seed(seed)
    model = load(options.name_or_path, dtype=torch.float32, **options.overrides).train()
    if options.deepen_to is None:
        return model
    try:
        return deepen(model, options.deepen_to)
    except HyenaDNAError as err:
        raise HyenaDNAError(f"--model.deepen_to {options.deepen_to}: {err}") from None


def pretrain_data_module(data: PretrainData, seed: int) -> PretrainDataModule:
    """The genomes' windows, set up (a corpus without a usable window is refused here). The
    option group's fields are the data module's arguments, by name."""
    datamodule = PretrainDataModule(**vars(data), seed=seed)
    datamodule.setup("fit")
    return datamodule


def labelled_data_module(
    data: LabelledData, seed: int, l_max: int | None, fold: tuple[int, int] | None = None
) -> LabelledDataModule:
    """The labelled splits, read and checked (unknown labels, over-long sequences), sequences
    cut at ``data.max_length`` or else the model's ``l_max``; with ``fold = (k, K)``, training
    and validation are the k-th of K cross-validation folds. The option group's fields are the
    data module's arguments, by name."""
    options = vars(data) | {"max_length": data.max_length or l_max}
    datamodule = LabelledDataModule(**options, seed=seed, fold=fold)
    datamodule.setup("fit")
    return datamodule


def new_task_model(
    backbone: HyenaDNA | None,
    head: HeadOptions,
    datamodule: LabelledDataModule,
    max_length: int | None,
    cnn_shape: dict | None = None,
) -> TaskModel:
    """``backbone`` with a fresh head for the data's task and labels or, without a backbone, the
    CNN baseline (shaped by ``cnn_shape``, as long as ``max_length`` or the longest sequence).
    The head records the longest sequence (at most ``max_length``) as its ``train_length``."""
    longest = datamodule.longest_sequence()
    longest = min(longest, max_length or longest)
    vocab = datamodule.vocab
    config = HeadConfig(task=vocab.task, labels=list(vocab.names), train_length=longest, **asdict(head))
    if backbone is None:
        return ConvClassifier(ConvConfig(length=max_length or longest, **(cnn_shape or {})), config)
    return SequenceModel(backbone, config)
