"""Post-hoc calibration of a classifier's logits on held-out data: bias-corrected temperature
scaling (BCTS; Alexandari, Shrikumar and Kundaje, ICML 2020) for a multi-class head, Platt
scaling per label for a multi-label head.

Why: a model trained on balanced classes but read on data with other class shares (splice sites
are a third of each class in training and half decoys in validation and test) calls too many of
the rarer classes. Its ranking is sound; its decision and its probabilities are not. A scale on
the logits and a bias per class, fitted by maximum likelihood on the validation split, move the
decision to that split's shares and make the probabilities honest, without touching the ranking
within a class. The fit is convex (the logits are linear in scale and bias, and cross-entropy is
convex in the logits), so it has one optimum, found here by L-BFGS in float64.

A calibration is saved as ``calibration.json`` beside a fine-tuned model;
:meth:`hyenadna.heads.task_model.TaskModel.predict_outputs` applies it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write_text
from hyenadna.io.checkpoint import read_json_object

CALIBRATION_FILE = "calibration.json"
CALIBRATED_TASKS = ("multiclass", "multilabel")
METHODS = {"multiclass": "bcts", "multilabel": "platt"}


@dataclass
class Calibration:
    """Calibrated logits ``logits * scale + bias``.

    Attributes:
        task: ``multiclass`` (one scale, the inverse of a temperature, and a bias per class,
            centred to sum 0) or ``multilabel`` (a scale and a bias per label).
        labels: the head's labels, in output order (checked against the model at load).
        scale: one value (multiclass) or one per label (multilabel), positive.
        bias: one per label.
        sequences: how many held-out sequences the fit read.
        nll_before: their mean negative log-likelihood (nats) before calibration.
        nll_after: the same after calibration (never above ``nll_before``).
    """

    task: str
    labels: list[str]
    scale: list[float]
    bias: list[float]
    sequences: int
    nll_before: float
    nll_after: float

    @property
    def method(self) -> str:
        return METHODS[self.task]

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """The calibrated logits (B, labels), in float32 at least: bfloat16 would round the
        scale and biases (0.37 to 0.369) and move probabilities by up to 0.01."""
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        scale = torch.tensor(self.scale, dtype=logits.dtype, device=logits.device)
        bias = torch.tensor(self.bias, dtype=logits.dtype, device=logits.device)
        return logits * scale + bias

    def check(self, where: str, task: str | None = None, labels: list[str] | None = None) -> None:
        """Refuse, naming ``where``, values that cannot be a calibration of a ``task`` head with ``labels``."""
        if self.task not in CALIBRATED_TASKS:
            raise HyenaDNAError(f"{where}: task must be one of {CALIBRATED_TASKS}, got {self.task!r}")
        widths = {"scale": 1 if self.task == "multiclass" else len(self.labels), "bias": len(self.labels)}
        for name, width in widths.items():
            values = getattr(self, name)
            if not isinstance(values, list) or len(values) != width:
                raise HyenaDNAError(f"{where}: {name} must be a list of {width} numbers, got {values!r}")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
                raise HyenaDNAError(f"{where}: {name} must hold finite numbers, got {values!r}")
        if min(self.scale) <= 0:
            raise HyenaDNAError(f"{where}: scale must be positive, got {self.scale!r}")
        if (task, labels) != (None, None) and (self.task, self.labels) != (task, labels):
            raise HyenaDNAError(f"{where}: fitted for a {self.task} head with labels {self.labels}, "
                                f"but the model is a {task} head with labels {labels}")  # fmt: skip

    def save(self, folder: str | Path) -> None:
        """Write ``folder/calibration.json``."""
        atomic_write_text(Path(folder) / CALIBRATION_FILE, json.dumps(asdict(self), indent=2) + "\n")


def read_calibration(folder: str | Path, task: str, labels: list[str]) -> Calibration | None:
    """The ``calibration.json`` of a model folder, checked against the head's task and labels;
    None where the folder has none."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    values = read_json_object(path, "calibration file")
    try:
        calibration = Calibration(**values)
    except TypeError as exc:
        raise HyenaDNAError(f"{path}: not a valid calibration file ({exc})") from None
    calibration.check(str(path), task, labels)
    return calibration


def fit_calibration(task: str, labels: list[str], logits: np.ndarray, targets: np.ndarray) -> Calibration:
    """The scale and biases that maximise the likelihood of ``targets`` (class indices (N,), or
    0/1 (N, labels)) under the calibrated ``logits`` (N, labels), fitted in float64."""
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if task not in CALIBRATED_TASKS:
        raise HyenaDNAError(f"calibration is for classifiers (multiclass or multilabel), not a {task} head")
    if z.ndim != 2 or z.shape[1] != len(labels) or len(z) != len(targets):
        raise HyenaDNAError(f"calibration needs (N, {len(labels)}) logits for N targets, got {tuple(z.shape)} "
                            f"logits and {len(targets)} targets")  # fmt: skip
    if not torch.isfinite(z).all():
        raise HyenaDNAError("calibration: the model gave non-finite logits on the validation split")
    targets = np.asarray(targets)
    check_classes(task, labels, targets)
    y = torch.as_tensor(targets, dtype=torch.float64)
    scale = torch.ones(1 if task == "multiclass" else len(labels), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(labels), dtype=torch.float64, requires_grad=True)

    def nll() -> torch.Tensor:
        return calibration_nll(task, z * scale + bias, y)

    with torch.no_grad():
        before = float(nll())
    optimizer = torch.optim.LBFGS([scale, bias], lr=1.0, max_iter=500, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, history_size=20, line_search_fn="strong_wolfe")  # fmt: skip

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        if task == "multiclass":  # softmax ignores a shift shared by every class: keep the one that sums to 0
            bias -= bias.mean()
        after = float(nll())
    fitted = Calibration(task, list(labels), scale.detach().tolist(), bias.detach().tolist(), len(z), before, after)
    against = [labels[j] for j, a in enumerate(fitted.scale) if a <= 0]
    if against:
        what = "its classes" if task == "multiclass" else f"labels {against}"
        raise HyenaDNAError(f"calibration: on the validation split the model's logits rank {what} the wrong "
                            f"way round (scale {fitted.scale}); no calibration keeps its ranking")  # fmt: skip
    if after > before:
        raise HyenaDNAError(f"calibration did not converge: validation NLL {before:.6f} -> {after:.6f}")
    fitted.check("calibration fitted on the validation split")  # finite: a separable split has no finite optimum
    return fitted


def calibration_nll(task: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (nats per sequence) of ``targets`` under ``logits``."""
    if task == "multiclass":
        return F.cross_entropy(logits, targets.long())
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / len(logits)


def check_classes(task: str, labels: list[str], targets: np.ndarray) -> None:
    """Refuse held-out targets (class indices, or 0/1 per label) that lack a class, or a label
    its positives or negatives: that class's bias would run to infinity."""
    if task == "multiclass":
        counts = np.bincount(targets.astype(int).ravel(), minlength=len(labels))
        missing = [labels[i] for i in range(len(labels)) if counts[i] == 0]
        if missing:
            raise HyenaDNAError(f"calibration needs every class in the validation split; {missing} have none")
        return
    positives = targets.reshape(len(targets), -1).sum(0)
    one_sided = [labels[j] for j in range(len(labels)) if positives[j] in (0, len(targets))]
    if one_sided:
        raise HyenaDNAError(f"calibration needs positives and negatives of every label in the validation split; "
                            f"{one_sided} have only one")  # fmt: skip
