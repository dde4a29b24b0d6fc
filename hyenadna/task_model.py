"""Fine-tuned models of any kind (a Hyena backbone with its head, or the CNN baseline): load a
model folder, and predict on DNA strings through the batching engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hyenadna.batching import encode_sequences, run_batched
from hyenadna.cnn import CNN_FILE, ConvClassifier
from hyenadna.heads import SequenceModel, TaskModel
from hyenadna.tiling import Tiling, tiled_per_window, too_long_hint
from hyenadna.tokenizer import CharacterTokenizer, pad_ids, reverse_complement


def load_task_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TaskModel:
    """A fine-tuned model folder: a :class:`SequenceModel`, or the :class:`ConvClassifier` baseline
    (told apart by its ``cnn.json``)."""
    if (Path(path) / CNN_FILE).is_file():
        return ConvClassifier.from_pretrained(path, map_location=map_location)
    return SequenceModel.from_pretrained(path, map_location=map_location)


def predict_sequences(
    model: TaskModel,
    seqs: Sequence[str],
    batch_size: int = 32,
    rc_average: bool = False,
    names: Sequence[str] | None = None,
    tiling: Tiling | None = None,
) -> np.ndarray:
    """Probabilities (classification) or values (regression), (N, outputs) float32, of DNA
    strings in input order. ``rc_average`` averages them with the reverse complements' (on top of
    a head's own ``rc_conjoin``, which averages logits). ``tiling``: a sequence longer than the
    model gets the mean (or max) of its windows' predictions (hyenadna.tiling)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    @torch.inference_mode()
    def predict_batch(rows: list[np.ndarray]) -> list[np.ndarray]:
        batch = pad_ids(rows, side="right")
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        return list(model.predict_outputs(logits).float().cpu().numpy())

    def predict(strings: Sequence[str], labels: Sequence[str] | None = None) -> np.ndarray:
        rows = encode_sequences(strings, model.max_length, labels, tokenizer=CharacterTokenizer())
        out = run_batched(rows, batch_size, predict_batch)
        return np.stack(out) if out else np.zeros((0, model.head_config.num_outputs), dtype=np.float32)

    def predict_tiled(strings: Sequence[str]) -> np.ndarray:
        if tiling is None or not tiling.enabled:
            too_long_hint(strings, model.max_length, names)
            return predict(strings, names)
        tiling.check(model.max_length)
        return tiled_per_window(strings, model.max_length, tiling, predict)

    try:
        values = predict_tiled(seqs)
        if rc_average:
            values = (values + predict_tiled([reverse_complement(s) for s in seqs])) / 2
    finally:
        model.train(was_training)
    return values
