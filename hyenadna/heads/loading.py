"""Fine-tuned models of any kind (a Hyena backbone with its head, or the CNN baseline): load a
model folder, and predict on DNA strings through the batching engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hyenadna.data.tokenizer import CharacterTokenizer, pad_ids, reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.calibration import Calibration, fit_calibration
from hyenadna.heads.cnn import CNN_FILE, ConvClassifier
from hyenadna.heads.cnn import WEIGHTS_FILE as CNN_WEIGHTS
from hyenadna.heads.task_model import SequenceModel, TaskModel
from hyenadna.inference.batching import encode_sequences, run_batched
from hyenadna.inference.tiling import Tiling, tiled_per_window, too_long_hint
from hyenadna.io.checkpoint import check_finite
from hyenadna.modules.modes import eval_mode


def load_task_model(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", calibrated: bool = True
) -> TaskModel:
    """A fine-tuned model folder: a :class:`SequenceModel`, or the :class:`ConvClassifier` baseline
    (told apart by its ``cnn.json``). Every weight, backbone and head, is checked finite.
    ``calibrated``: with the folder's ``calibration.json``, if any (False: neither read nor
    checked, the raw model; ``hyenadna calibrate --overwrite`` replaces it)."""
    folder = Path(path)
    if not folder.is_dir():
        raise HyenaDNAError(f"no fine-tuned model folder at {path}")
    if (folder / CNN_FILE).is_file():
        model: TaskModel = ConvClassifier.from_pretrained(folder, map_location=map_location, calibrated=calibrated)
        check_finite(model.state_dict(), folder / CNN_WEIGHTS)
        return model
    return SequenceModel.from_pretrained(folder, map_location=map_location, calibrated=calibrated)


def predict_sequences(
    model: TaskModel,
    seqs: Sequence[str],
    batch_size: int = 32,
    rc_average: bool = False,
    names: Sequence[str] | None = None,
    tiling: Tiling | None = None,
    logits: bool = False,
) -> np.ndarray:
    """Probabilities (classification) or values (regression), (N, outputs) float32, of DNA
    strings in input order. ``rc_average`` averages them with the reverse complements' (on top of
    a head's own ``rc_conjoin``, which averages logits). ``tiling``: a sequence longer than the
    model gets the mean of its windows' probabilities or, with ``combine="max"``, the softmax
    (sigmoid) of the maximum of its windows' logits, so that class probabilities still sum to 1
    (hyenadna.inference.tiling). ``logits``: the raw logits instead, before any calibration
    (without tiling or ``rc_average``)."""
    if logits and (rc_average or (tiling is not None and tiling.enabled)):
        raise HyenaDNAError("raw logits are given for whole sequences only (no tiling, no rc_average)")
    device = next(model.parameters()).device

    def outputs(logits: torch.Tensor) -> np.ndarray:
        return model.predict_outputs(logits).float().cpu().numpy()

    def predict(strings: Sequence[str], labels: Sequence[str] | None = None, logits: bool = False) -> np.ndarray:
        @torch.inference_mode()
        def predict_batch(rows: list[np.ndarray]) -> list[np.ndarray]:
            batch = pad_ids(rows, side="right")
            raw = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            wide = raw.to(torch.promote_types(raw.dtype, torch.float32))  # bfloat16 has no numpy twin
            return list(wide.cpu().numpy() if logits else outputs(raw))

        rows = encode_sequences(strings, model.max_length, labels, tokenizer=CharacterTokenizer())
        out = run_batched(rows, batch_size, predict_batch)
        return np.stack(out) if out else np.zeros((0, model.head_config.num_outputs), dtype=np.float32)

    def predict_tiled(strings: Sequence[str]) -> np.ndarray:
        if tiling is None or not tiling.enabled:
            too_long_hint(strings, model.max_length, names)
            return predict(strings, names)
        tiling.check(model.max_length)
        if tiling.combine == "max":  # the maximum logit per output, then the softmax: sums stay 1
            combined = tiled_per_window(strings, model.max_length, tiling, lambda s: predict(s, logits=True))
            return outputs(torch.from_numpy(combined))
        return tiled_per_window(strings, model.max_length, tiling, predict)

    with eval_mode(model):
        if logits:
            too_long_hint(seqs, model.max_length, names)
            return predict(seqs, names, logits=True)
        values = predict_tiled(seqs)
        if rc_average:
            values = (values + predict_tiled([reverse_complement(s) for s in seqs])) / 2
    return values


def calibrate_on(model: TaskModel, seqs: Sequence[str], targets: np.ndarray, batch_size: int = 32) -> Calibration:
    """Fit ``model``'s calibration (:mod:`hyenadna.heads.calibration`) to held-out sequences
    and their targets, from its raw logits, and set it: its probabilities go through it from now on."""
    config = model.head_config
    model.calibration = None
    logits = predict_sequences(model, seqs, batch_size, logits=True)
    model.calibration = fit_calibration(config.task, list(config.labels), logits, targets)
    return model.calibration
