"""The predictions TSV of ``hyenadna predict`` and of a fine-tuning run's ``test_predictions.tsv``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig


def prediction_table(
    config: HeadConfig, names: list[str], values: np.ndarray, truths: list[tuple[str, ...]] | None
) -> str:
    """The TSV of ``predict`` (and of a run's ``test_predictions.tsv``): name, the true label(s)
    when known, one probability or value per output, and the predicted class of a classifier."""
    prefix = "value" if config.task == "regression" else "p"
    header = ["name"] + (["label"] if truths is not None else []) + [f"{prefix}_{c}" for c in config.labels]
    if config.task == "multiclass":
        header.append("predicted")
    lines = ["\t".join(header)]
    for i, row in enumerate(values):
        fields = [names[i]] + ([";".join(truths[i])] if truths is not None else [])
        fields += [f"{v:.6g}" for v in row]
        if config.task == "multiclass":
            fields.append(config.labels[int(np.argmax(row))])
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"
