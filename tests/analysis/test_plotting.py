"""A fine-tuning run's test pictures, on fresh random predictions."""

from __future__ import annotations

import warnings

import numpy as np

from hyenadna.analysis.plotting import classification_curves


def _probs(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    logits = rng.normal(size=(n, classes))
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def test_curves_are_drawn_for_every_class_a_split_holds(tmp_path):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's and scikit-learn's warnings are failures here
        written = classification_curves(_probs(rng, 60, 3), targets, ["a", "b", "c"], tmp_path)
    assert sorted(p.name for p in written) == ["confusion.png", "pr.png", "roc.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_a_test_split_of_one_class_gives_pictures_that_say_so_without_warnings(tmp_path):
    """A binary test split of one class has no ROC or precision-recall curve: the pictures
    say so, and matplotlib is not left to warn about an empty legend."""
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = classification_curves(_probs(rng, 20, 2), np.zeros(20, dtype=int), ["no", "yes"], tmp_path)
    assert {p.name for p in written} == {"roc.png", "pr.png", "confusion.png"}
