"""Pictures: attribution logos, ISM heatmaps, motif logos, and a fine-tuning run's curves.

An optional extra (``pip install 'hyenadna[plot]'``: matplotlib and logomaker): nothing in the
core imports this module at start-up, and every function here imports matplotlib when called,
with the Agg backend (files, no display). The file type follows the path's suffix (``.png``,
``.svg``, ``.pdf``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write

BASES = "ACGT"


def plotting_available() -> bool:
    """Whether matplotlib and logomaker can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("matplotlib", "logomaker"))


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise HyenaDNAError("plots need matplotlib and logomaker: pip install 'hyenadna[plot]'") from None
    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=suffix, dpi=150, bbox_inches="tight"))
    plt.close(fig)
    return path


def _logo(ax, matrix: np.ndarray, start: int = 0) -> None:
    try:
        import logomaker
        import pandas as pd
    except ImportError:
        raise HyenaDNAError("logos need logomaker: pip install 'hyenadna[plot]'") from None
    frame = pd.DataFrame(np.asarray(matrix, dtype=float), columns=list(BASES))
    frame.index = frame.index + start
    logomaker.Logo(frame, ax=ax, color_scheme="classic")
    ax.axhline(0, color="grey", linewidth=0.5)


def attribution_logo(
    attributions: np.ndarray, path: str | os.PathLike, title: str = "", start: int = 0, ylabel: str = "attribution"
) -> Path:
    """A sequence logo of per-base attributions (L, 4): letter heights are the attributions
    (gradient x input: the sequence's own bases; ISM means or IG: any base), negative below 0."""
    plt = _pyplot()
    length = attributions.shape[0]
    fig, ax = plt.subplots(figsize=(max(6.0, length / 8), 2.2))
    _logo(ax, attributions, start)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("position (0-based)")
    return _save(fig, path)


def ism_heatmap(deltas: np.ndarray, sequence: str, path: str | os.PathLike, title: str = "",
                label: str = "output change") -> Path:  # fmt: skip
    """ISM deltas (L, 4) as a heatmap, bases by positions, zero-centred colours; the sequence's
    own base at each position is marked with a dot."""
    plt = _pyplot()
    length = deltas.shape[0]
    fig, ax = plt.subplots(figsize=(max(6.0, length / 8), 2.0))
    bound = float(np.abs(deltas).max()) or 1.0
    image = ax.imshow(deltas.T, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    own = [(i, BASES.index(b)) for i, b in enumerate(sequence.upper()) if b in BASES]
    if own:
        xs, ys = zip(*own)
        ax.scatter(xs, ys, s=2, c="black")
    ax.set_yticks(range(4), list(BASES))
    ax.set_xlabel("position (0-based)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=label, fraction=0.03)
    return _save(fig, path)


def motif_logo(ppm: np.ndarray, path: str | os.PathLike, title: str = "") -> Path:
    """An information-content logo (bits) of a position probability matrix (W, 4)."""
    plt = _pyplot()
    ppm = np.asarray(ppm, dtype=float)
    ppm = ppm / ppm.sum(1, keepdims=True)
    entropy = -(ppm * np.log2(np.clip(ppm, 1e-9, 1))).sum(1, keepdims=True)
    fig, ax = plt.subplots(figsize=(max(3.0, ppm.shape[0] / 3), 1.8))
    _logo(ax, ppm * (2 - entropy))
    ax.set_ylim(0, 2)
    ax.set_ylabel("bits")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def attribution_pictures(folder: Path, names, seqs, results: dict, outputs: list[str], target: str | None,
                      count: int) -> list[str]:  # fmt: skip
    """Logos of each gradient method and ISM heatmaps (mean over alternatives as a logo too) for
    the first ``count`` records, toward ``target`` against the other outputs. File names come
    from the record names through :func:`hyenadna.io.file_plan.unique_names`, joined by
    :func:`hyenadna.io.file_plan.inside`: no record name can write outside ``folder``."""
    from hyenadna.analysis.attribution import contrast, ism_importance, target_index
    from hyenadna.io.file_plan import inside, unique_names

    index = target_index(outputs, target)
    what = outputs[index] if len(outputs) < 2 else f"{outputs[index]} vs rest"
    count = min(count, len(seqs))
    stems = [f"{i:04d}_{name}" for i, name in enumerate(unique_names(names[:count], fallback="record"))]
    written = []
    for i in range(count):
        for method, arrays in results.items():
            scores = contrast([arrays[i]], index)[0]
            if method == "ism":
                heatmap = inside(folder, f"{stems[i]}.ism_heatmap.png")
                written.append(str(ism_heatmap(scores, seqs[i], heatmap, f"{names[i]}: ISM, {what}")))
                scores = ism_importance(scores, seqs[i])
            title = f"{names[i]}: {method}, {what}"
            written.append(str(attribution_logo(scores, inside(folder, f"{stems[i]}.{method}.png"), title)))
    return written


def classification_curves(probs: np.ndarray, targets: np.ndarray, labels: Sequence[str],
                          folder: str | os.PathLike) -> list[Path]:  # fmt: skip
    """ROC and precision-recall curves (one-vs-rest per class, AUC and AP in the legend) and the
    confusion matrix of a multi-class test split: ``roc.png``, ``pr.png``, ``confusion.png``."""
    from sklearn.metrics import auc, average_precision_score, confusion_matrix, precision_recall_curve, roc_curve

    plt = _pyplot()
    folder = Path(folder)
    targets = np.asarray(targets).astype(int)
    written = []
    classes = range(len(labels)) if len(labels) > 2 else [1]
    for kind in ("roc", "pr"):
        fig, ax = plt.subplots(figsize=(4, 4))
        drawn = 0
        for c in classes:
            positive = targets == c
            if positive.all() or not positive.any():
                continue  # no curve for a class the split has all or none of
            drawn += 1
            if kind == "roc":
                fpr, tpr, _ = roc_curve(positive, probs[:, c])
                ax.plot(fpr, tpr, label=f"{labels[c]} (AUC {auc(fpr, tpr):.3f})")
            else:
                precision, recall, _ = precision_recall_curve(positive, probs[:, c])
                ap = average_precision_score(positive, probs[:, c])
                ax.plot(recall, precision, label=f"{labels[c]} (AP {ap:.3f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
            ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
        else:
            ax.set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
        if drawn:
            ax.legend(fontsize=7)
        else:  # say why the axes are empty, rather than an empty legend and a warning
            ax.text(0.5, 0.5, "no curve: the test split\nhas a single class", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        written.append(_save(fig, folder / f"{kind}.png"))
    matrix = confusion_matrix(targets, probs.argmax(1), labels=range(len(labels)))
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center", color="black" if n < matrix.max() / 2 else "white")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    written.append(_save(fig, folder / "confusion.png"))
    return written


def training_curves(metrics_csv: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Training loss by step and the validation metrics by step, from a run's CSV log."""
    plt = _pyplot()
    series: dict[str, list[tuple[float, float]]] = {}
    with open(metrics_csv) as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if value and key and (key == "train/loss" or key.startswith("val/")) and row.get("step"):
                    series.setdefault(key, []).append((float(row["step"]), float(value)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key in ("train/loss", "val/loss"):
        if key in series:
            steps, values = zip(*series[key])
            left.plot(steps, values, label=key, marker="." if key.startswith("val") else None)
    left.set(xlabel="step", title="loss")
    for key, points in series.items():
        if key.startswith("val/") and key != "val/loss":
            steps, values = zip(*points)
            right.plot(steps, values, marker=".", label=key)
    right.set(xlabel="step", title="validation metrics")
    for axes in (left, right):
        if axes.lines:  # a run stopped before its first log or validation has nothing to label
            axes.legend(fontsize=7)
    return _save(fig, path)
