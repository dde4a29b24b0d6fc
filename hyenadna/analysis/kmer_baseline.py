"""A k-mer logistic-regression baseline: what a fine-tuned model has to beat on the same split.

Each sequence becomes its normalised counts of every k-mer for k in ``ks`` (both strands pooled
when ``canonical``), fed to an L2-regularised logistic regression (one per label for multi-label)
or a ridge regression. Cheap, strong on motif-driven tasks, and a fair floor for comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np

from hyenadna.analysis.metrics import task_metrics
from hyenadna.data.tokenizer import reverse_complement


def kmer_features(seqs: Sequence[str], ks: Sequence[int] = (3, 4, 5), canonical: bool = True) -> np.ndarray:
    """(N, sum 4^k) frequencies of k-mers of A/C/G/T (k-mers with other letters are skipped)."""
    blocks = []
    for k in ks:
        index = {"".join(p): i for i, p in enumerate(product("ACGT", repeat=k))}
        feats = np.zeros((len(seqs), len(index)), dtype=np.float32)
        for row, seq in enumerate(seqs):
            strands = (seq.upper(), reverse_complement(seq.upper())) if canonical else (seq.upper(),)
            for s in strands:
                for j in range(len(s) - k + 1):
                    col = index.get(s[j : j + k])
                    if col is not None:
                        feats[row, col] += 1
            total = feats[row].sum()
            if total:
                feats[row] /= total
        blocks.append(feats)
    return np.concatenate(blocks, axis=1)


KMER_C = (0.01, 0.1, 1.0)
"""Inverse regularisation strengths tried on the validation split (ridge uses alpha = 1 / C)."""


def _fit_predict(task: str, x_train, y_train, x_eval, c: float, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "regression":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0 / c)).fit(x_train, y_train).predict(x_eval)
    classifier = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    if task == "multilabel":
        classifier = OneVsRestClassifier(classifier)
    return make_pipeline(StandardScaler(), classifier).fit(x_train, y_train).predict_proba(x_eval)


def kmer_baseline(
    task: str,
    train_seqs: Sequence[str],
    train_targets: np.ndarray,
    test_seqs: Sequence[str],
    test_targets: np.ndarray,
    ks: Sequence[int] = (3, 4, 5),
    seed: int = 0,
    val: tuple[Sequence[str], np.ndarray] | None = None,
    cs: Sequence[float] = KMER_C,
) -> dict[str, float]:
    """Fit on the training split, return the test metrics (same metric functions as fine-tuning).

    With a validation split ``(sequences, targets)``, the regularisation C is the one of ``cs``
    with the best validation score (the metric fine-tuning monitors); without one, C = 0.1
    (ridge regression: alpha = 1).
    The chosen C is returned as ``c``.
    """
    from hyenadna.analysis.metrics import DEFAULT_MONITOR

    x_train, x_test = kmer_features(train_seqs, ks), kmer_features(test_seqs, ks)
    best = 1.0 if task == "regression" else 0.1  # the defaults before C was searched: alpha 1, C 0.1
    if val is not None and len(cs) > 1:
        x_val = kmer_features(val[0], ks)
        metric, mode = DEFAULT_MONITOR[task]
        sign = 1 if mode == "max" else -1
        scores = {c: task_metrics(task, _fit_predict(task, x_train, train_targets, x_val, c, seed), val[1])[metric]
                  for c in cs}  # fmt: skip
        best = max(cs, key=lambda c: sign * scores[c])
    metrics = task_metrics(task, _fit_predict(task, x_train, train_targets, x_test, best, seed), test_targets)
    return {**metrics, "c": best}
