"""Metrics over a whole split (never averaged over batches), for each task type."""

from __future__ import annotations

import numpy as np

from hyenadna.errors import HyenaDNAError


def classification_metrics(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Accuracy, MCC, macro F1 and AUROC (one-vs-rest macro for more than 2 classes)."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

    predicted = probs.argmax(axis=1)
    out = {
        "accuracy": float(accuracy_score(targets, predicted)),
        "mcc": float(matthews_corrcoef(targets, predicted)),
        "macro_f1": float(f1_score(targets, predicted, average="macro", labels=np.arange(probs.shape[1]))),
    }
    present = np.unique(targets)
    if present.size == probs.shape[1] and present.size >= 2:
        if probs.shape[1] == 2:
            out["auroc"] = float(roc_auc_score(targets, probs[:, 1]))
        else:
            out["auroc"] = float(roc_auc_score(targets, probs, multi_class="ovr", average="macro"))
    return out


def multilabel_metrics(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Macro AUROC and AUPRC over the labels that have both classes in the split, and exact-match accuracy."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    usable = [j for j in range(targets.shape[1]) if 0 < targets[:, j].sum() < targets.shape[0]]
    out = {"subset_accuracy": float(((probs > 0.5) == (targets > 0.5)).all(axis=1).mean())}
    if usable:
        out["auroc"] = float(np.mean([roc_auc_score(targets[:, j], probs[:, j]) for j in usable]))
        out["auprc"] = float(np.mean([average_precision_score(targets[:, j], probs[:, j]) for j in usable]))
    return out


def regression_metrics(preds: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation (averaged over targets), MSE and R²."""
    from scipy.stats import pearsonr, spearmanr

    preds, targets = preds.reshape(len(preds), -1), targets.reshape(len(targets), -1)
    pearson, spearman = [], []
    for j in range(targets.shape[1]):
        if np.std(preds[:, j]) > 0 and np.std(targets[:, j]) > 0:
            pearson.append(pearsonr(preds[:, j], targets[:, j]).statistic)
            spearman.append(spearmanr(preds[:, j], targets[:, j]).statistic)
    residual = ((preds - targets) ** 2).sum(axis=0)
    total = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    out = {"mse": float(((preds - targets) ** 2).mean()), "r2": float(np.mean(1 - residual / np.maximum(total, 1e-12)))}
    if pearson:
        out["pearson"] = float(np.mean(pearson))
        out["spearman"] = float(np.mean(spearman))
    return out


def task_metrics(task: str, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Metrics for ``task`` from probabilities (classification) or values (regression)."""
    if len(targets) == 0:
        raise HyenaDNAError("no examples to compute metrics on")
    if task == "multiclass":
        return classification_metrics(outputs, targets.astype(int))
    if task == "multilabel":
        return multilabel_metrics(outputs, targets)
    if task == "regression":
        return regression_metrics(outputs, targets)
    raise HyenaDNAError(f"unknown task {task!r}")


LOWER_IS_BETTER = frozenset({"loss", "mse", "mae", "rmse"})
"""Validation metrics that improve downwards (every other one improves upwards)."""
DEFAULT_MONITOR = {"multiclass": ("mcc", "max"), "multilabel": ("auroc", "max"), "regression": ("pearson", "max")}
