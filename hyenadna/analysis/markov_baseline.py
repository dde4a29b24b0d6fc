"""A Markov-chain classifier baseline: one order-k chain per class, Bayes' rule on top.

The classical generative classifier of DNA (the interpolated Markov models of gene finders and
read binners): each class's chain is fitted on that class's training sequences, and a sequence
gets ``log P(class) + log P(sequence | class's chain)`` per class, softmax over classes. It is the
count-table counterpart of the class-likelihood head (:class:`hyenadna.heads.likelihood.ClassLikelihoodHead`),
which scores each base with a language model instead, so the two together show what the model
adds over counting. The order, the smoothing and whether both strands are used are chosen on the
validation split.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
from scipy.special import softmax

from hyenadna.analysis.markov import MarkovChain, windows_log_likelihoods
from hyenadna.analysis.metrics import DEFAULT_MONITOR, task_metrics
from hyenadna.data.tokenizer import CharacterTokenizer, reverse_complement
from hyenadna.errors import HyenaDNAError

MARKOV_ORDERS = tuple(range(9))
MARKOV_BETAS = (1.0, 16.0, 256.0)
"""Orders and smoothing strengths tried on the validation split (without one: order 5, beta 16)."""


class MarkovClassifier:
    """Per-class Markov chains fitted once at the highest order; lower orders reuse the counts."""

    def __init__(self, seqs: Sequence[str], targets: np.ndarray, max_order: int, both_strands: bool) -> None:
        targets = np.asarray(targets)
        if targets.ndim != 1:
            raise HyenaDNAError("the Markov classifier is for multi-class tasks (one label per sequence)")
        self.both_strands = both_strands
        self.num_classes = int(targets.max()) + 1
        counts = np.bincount(targets, minlength=self.num_classes).astype(np.float64)
        self.log_prior = np.log(np.maximum(counts, 0.5) / np.maximum(counts, 0.5).sum())
        self.chains = []
        for c in range(self.num_classes):
            own = [s for s, t in zip(seqs, targets) if t == c]
            self.chains.append(MarkovChain(max_order).fit(_ids(own, both_strands)))

    def encode(self, seqs: Sequence[str]) -> list[list[np.ndarray]]:
        """The token ids :meth:`log_posteriors` scores: the sequences, and their reverse
        complements when the chains were fitted on both strands (encode once, score often)."""
        strands = [list(seqs)] + ([[reverse_complement(s) for s in seqs]] if self.both_strands else [])
        return [_ids(strand, False) for strand in strands]

    def log_posteriors(self, encoded: list[list[np.ndarray]], order: int, beta: float) -> np.ndarray:
        """(N, C) class log-likelihoods plus log priors of sequences given by :meth:`encode` (the
        mean of both strands' likelihoods when the chains were fitted on both)."""
        scores = np.zeros((len(encoded[0]), self.num_classes))
        for ids in encoded:
            for c, chain in enumerate(self.chains):
                scores[:, c] += windows_log_likelihoods(chain.truncated(order, beta), ids)
        return scores / len(encoded) + self.log_prior


def _ids(seqs: Sequence[str], both_strands: bool) -> list[np.ndarray]:
    tokenizer = CharacterTokenizer(unknown="unk")
    strands = list(seqs) + ([reverse_complement(s) for s in seqs] if both_strands else [])
    return [tokenizer.encode_bases(s) for s in strands]


def markov_baseline(
    train_seqs: Sequence[str],
    train_targets: np.ndarray,
    test_seqs: Sequence[str],
    test_targets: np.ndarray,
    val: tuple[Sequence[str], np.ndarray] | None = None,
    orders: Sequence[int] = MARKOV_ORDERS,
    betas: Sequence[float] = MARKOV_BETAS,
) -> dict[str, float]:
    """Fit per-class chains on the training split and return the test metrics (the metric
    functions of fine-tuning), with the chosen ``order``, ``beta`` and ``both_strands``.

    With a validation split ``(sequences, targets)`` every order x beta x {one strand, both} is
    tried and the best by the metric fine-tuning monitors (MCC) kept; without one, order 5,
    beta 16, one strand."""
    metric = DEFAULT_MONITOR["multiclass"][0]
    fitted = {
        strands: MarkovClassifier(train_seqs, train_targets, max(orders), strands)
        for strands in ((False, True) if val is not None else (False,))
    }
    choice = (False, 5, 16.0)
    if val is not None:
        best = -np.inf
        encoded = {strands: classifier.encode(val[0]) for strands, classifier in fitted.items()}
        for strands, order, beta in product(fitted, orders, betas):
            probs = softmax(fitted[strands].log_posteriors(encoded[strands], order, beta), axis=1)
            score = task_metrics("multiclass", probs, np.asarray(val[1]))[metric]
            if score > best:  # ties keep the earlier: one strand, lower order, less smoothing
                best, choice = score, (strands, order, beta)
    elif choice[1] > max(orders):
        choice = (False, max(orders), choice[2])
    strands, order, beta = choice
    classifier = fitted[strands]
    probs = softmax(classifier.log_posteriors(classifier.encode(test_seqs), order, beta), axis=1)
    result = task_metrics("multiclass", probs, np.asarray(test_targets))
    return {**result, "order": order, "beta": beta, "both_strands": strands}
