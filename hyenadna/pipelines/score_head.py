"""Variant effects through a fine-tuned head: ``hyenadna score --head_model``.

For each ALT allele, the fine-tuned model (Hyena head or CNN) predicts on the reference and the
alternate windows that :mod:`hyenadna.pipelines.score` builds (the same REF checks, statuses,
resumable TSV and annotated VCF), and the score of each output is

    delta_<output> = prediction(alt window) - prediction(ref window)

in probability for a classifier (softmax or sigmoid per label) and in value for a regression
head, as gReLU and selene score variants through a trained model. ``rc_average`` averages each
prediction with that of the window's reverse complement. The window defaults to the head's
training length (``task.json``), so the model sees inputs of the size it learnt on.
"""

from __future__ import annotations

import re

from hyenadna.heads import TaskModel
from hyenadna.pipelines.variants import InfoField, VariantJob, WindowScorer
from hyenadna.task_model import predict_sequences


def safe_label(label: str) -> str:
    """An output name as it appears in column names and INFO keys (VCF keys are
    ``[A-Za-z_][0-9A-Za-z_.]*``): other characters become ``_``."""
    return re.sub(r"[^0-9A-Za-z_.]", "_", label)


def head_columns(model: TaskModel) -> tuple[str, ...]:
    """ref_<label>, alt_<label>, delta_<label> for every output, in output order."""
    labels = [safe_label(label) for label in model.head_config.labels]
    return tuple(f"{kind}_{label}" for label in labels for kind in ("ref", "alt", "delta"))


def head_scorer(model: TaskModel, rc_average: bool, batch_size: int) -> WindowScorer:
    """The :class:`WindowScorer` of a fine-tuned model (module docstring)."""
    import json
    from dataclasses import asdict

    config = model.head_config
    what = "value" if config.task == "regression" else "probability"

    def score(jobs: list[VariantJob]) -> list[tuple | None]:
        scorable = [j for j in jobs if j.status == "ok"]
        results: dict[int, tuple] = {}
        if scorable:
            seqs = [s for j in scorable for s in (j.ref_window, j.alt_window)]
            predicted = predict_sequences(model, seqs, batch_size, rc_average).astype(float)
            for k, job in enumerate(scorable):
                ref, alt = predicted[2 * k], predicted[2 * k + 1]
                results[id(job)] = tuple(v for r, a in zip(ref, alt) for v in (r, a, a - r))
        return [results.get(id(j)) for j in jobs]

    info = [
        InfoField(f"HYENADNA_DELTA_{safe_label(label)}", f"delta_{safe_label(label)}",
                  f"HyenaDNA head: change of the {label} {what}, alt minus ref")
        for label in config.labels
    ]  # fmt: skip
    description = json.dumps({"head": asdict(config), "class": type(model).__name__}, sort_keys=True)
    return WindowScorer(head_columns(model), score, info, description)
