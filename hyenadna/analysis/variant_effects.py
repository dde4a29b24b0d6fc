"""Variant effects through a fine-tuned head: ``hyenadna score --head_model``.

For each ALT allele, the fine-tuned model (Hyena head or CNN) predicts on the reference and the
alternate windows that :mod:`hyenadna.pipelines.score` builds (the same REF checks, statuses,
resumable TSV and annotated VCF), and the score of each output is

    delta_<output> = prediction(alt window) - prediction(ref window)

in probability for a classifier (softmax or sigmoid per label) and in value for a regression
head, as gReLU and selene score variants through a trained model. ``rc_average`` averages each
prediction with that of the window's reverse complement. The window defaults to the head's
training length (``task.json``), so the model sees inputs of the size it learnt on.

Labels name the TSV columns and INFO keys after :func:`safe_label`; labels that come out the same
(``a-b`` and ``a_b``) are numbered apart (``a_b``, ``a_b_2``), so that no output's scores replace
another's; each INFO field's description names its label as written.
"""

from __future__ import annotations

import re

from hyenadna.data.variants import InfoField, VariantJob, WindowScorer
from hyenadna.heads.loading import predict_sequences
from hyenadna.heads.task_model import TaskModel


def safe_label(label: str) -> str:
    """An output name as it appears in column names and INFO keys (VCF keys are
    ``[A-Za-z_][0-9A-Za-z_.]*``): other characters become ``_``."""
    return re.sub(r"[^0-9A-Za-z_.]", "_", label)


def label_names(labels: list[str]) -> list[str]:
    """:func:`safe_label` of each label, numbered apart (``_2``, ``_3``...) where two come out
    the same, and ``output_<k>`` for an empty one: one column and one INFO key per output."""
    taken: set[str] = set()
    names = []
    for k, label in enumerate(labels, start=1):
        base = safe_label(str(label)) or f"output_{k}"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names.append(name)
    return names


def head_columns(model: TaskModel) -> tuple[str, ...]:
    """ref_<label>, alt_<label>, delta_<label> for every output, in output order."""
    labels = label_names(model.head_config.labels)
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
        InfoField(f"HYENADNA_DELTA_{name}", f"delta_{name}",
                  f"HyenaDNA head: change of the {_quoted(label)} {what}, alt minus ref")
        for label, name in zip(config.labels, label_names(config.labels))
    ]  # fmt: skip
    description = json.dumps({"head": asdict(config), "class": type(model).__name__}, sort_keys=True)
    return WindowScorer(head_columns(model), score, info, description)


def _quoted(label: str) -> str:
    """A label as it may stand in a VCF header's quoted Description (no quote, backslash or line break)."""
    return re.sub(r'["\\\r\n]', "_", str(label))
