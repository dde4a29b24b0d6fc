"""Load any fine-tuned model folder: a Hyena backbone with its head, or the CNN baseline."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hyenadna.cnn import CNN_FILE, ConvClassifier
from hyenadna.heads import SequenceModel, TaskModel


def load_task_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TaskModel:
    """A fine-tuned model folder: a :class:`SequenceModel`, or the :class:`ConvClassifier` baseline
    (told apart by its ``cnn.json``)."""
    if (Path(path) / CNN_FILE).is_file():
        return ConvClassifier.from_pretrained(path, map_location=map_location)
    return SequenceModel.from_pretrained(path, map_location=map_location)
