"""Order-k Markov chains over A/C/G/T: the yardstick for a DNA language model's bits per base.

A language model that does not beat a Markov chain fitted on the same training bases has learnt
nothing a table of (k+1)-mer counts does not hold. The chain here is scored exactly as
:mod:`hyenadna.inference.likelihood` scores a model: base t of a window given the bases before it *in the
same window*, A/C/G/T targets only, at least one base of context. Where fewer than k clean bases
precede a target (the start of a window, an N), the chain uses the longest clean context it has.

Smoothing is hierarchical (an interpolated Dirichlet prior): the order-j estimate is
``(n(c, b) + beta * p_{j-1}(b | c')) / (n(c) + beta)`` where c' drops the oldest base of the
context, down to the base frequencies and, below them, 1/4. A higher order therefore never does
much worse than a lower one on unseen contexts, which makes the chain a fair opponent at k = 12.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hyenadna.data.tokenizer import A_ID, T_ID
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.likelihood import bits_per_base

MAX_ORDER = 12
"""4^13 counts of 8 bytes is 0.5 GB; higher orders would need hashing and have too few counts."""


def base_codes(ids: np.ndarray) -> np.ndarray:
    """Token ids (any integer dtype) to codes 0..3 for A/C/G/T and 4 for anything else."""
    ids = np.asarray(ids)
    is_base = (ids >= A_ID) & (ids <= T_ID)
    return np.where(is_base, ids - A_ID, 4).astype(np.int64)


def _clean_run(codes: np.ndarray) -> np.ndarray:
    """``run[t]``: how many clean bases (codes < 4) end at position t - 1, i.e. usable context for t."""
    clean = codes < 4
    run = np.zeros(codes.size + 1, dtype=np.int64)
    # run length of clean bases ending at each position: distance to the last non-base at or before it
    idx = np.arange(codes.size)
    last_bad = np.maximum.accumulate(np.where(clean, -1, idx))
    run[1:] = idx - last_bad
    return run[:-1]


def _gram_codes(codes: np.ndarray, order: int) -> np.ndarray:
    """Code of the (order+1)-gram ending at each position t >= order (oldest base most significant);
    values are meaningless where the gram holds a non-base (callers mask those)."""
    n = codes.size - order
    gram = np.zeros(max(n, 0), dtype=np.int64)
    for i in range(order + 1):
        gram = gram * 4 + np.minimum(codes[i : i + n], 3)
    return gram


class MarkovChain:
    """Counts of every j-mer context and next base, j = 0..order, fitted on clean bases."""

    def __init__(self, order: int, beta: float = 1.0) -> None:
        if not 0 <= order <= MAX_ORDER:
            raise HyenaDNAError(f"Markov order must lie in [0, {MAX_ORDER}], got {order}")
        if not beta > 0:
            raise HyenaDNAError(f"Markov smoothing beta must be positive, got {beta}")
        self.order = order
        self.beta = beta
        self.gram_counts = [np.zeros(4 ** (j + 1), dtype=np.int64) for j in range(order + 1)]
        self.bases_seen = 0

    def fit(self, sequences: Iterable[np.ndarray]) -> MarkovChain:
        """Add the counts of each sequence of token ids (one contig or one stretch of it)."""
        for ids in sequences:
            codes = base_codes(ids)
            run = _clean_run(codes)
            clean = codes < 4
            self.bases_seen += int(clean.sum())
            for j in range(self.order + 1):
                if codes.size <= j:
                    break
                ok = clean[j:] & (run[j:] >= j)
                gram = _gram_codes(codes, j)[ok]
                self.gram_counts[j] += np.bincount(gram, minlength=4 ** (j + 1))
        return self

    def truncated(self, order: int, beta: float | None = None) -> MarkovChain:
        """The same counts used up to a lower ``order`` (and another ``beta``): one fit at order 12
        gives every lower chain."""
        if not 0 <= order <= self.order:
            raise HyenaDNAError(f"order {order} is not in [0, {self.order}]")
        chain = MarkovChain(order, self.beta if beta is None else beta)
        chain.gram_counts, chain.bases_seen = self.gram_counts[: order + 1], self.bases_seen
        return chain

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """Natural-log likelihood of each base of one window given the bases before it in the
        window (float64, NaN where the base is not scored, as :mod:`hyenadna.inference.likelihood` says)."""
        return self._log_probs(base_codes(ids), np.arange(np.asarray(ids).size) >= 1)

    def _log_probs(self, codes: np.ndarray, scored: np.ndarray) -> np.ndarray:
        if self.bases_seen == 0:
            raise HyenaDNAError("the Markov chain has not been fitted")
        order_used = np.minimum(_clean_run(codes), self.order)
        scored = scored & (codes < 4)
        p = np.full(codes.size, 0.25)
        for j in range(self.order + 1):
            counts = self.gram_counts[j]
            context_counts = counts.reshape(-1, 4).sum(axis=1)
            use = scored & (order_used >= j)
            if j > 0:
                use[:j] = False
            pos = np.flatnonzero(use)
            if pos.size == 0:
                break
            gram = _gram_codes(codes, j)[pos - j]
            p[pos] = (counts[gram] + self.beta * p[pos]) / (context_counts[gram // 4] + self.beta)
        out = np.log(p)
        out[~scored] = np.nan
        return out


def _joined(windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows joined with an N between them (which ends every context): their codes, which
    positions are scored (not the first base of a window, as when each is scored alone), and
    which window each position belongs to."""
    pieces, owner = [], []
    for i, ids in enumerate(windows):
        codes = base_codes(ids)
        pieces += [codes, np.array([4])]
        owner.append(np.full(codes.size + 1, i))
    codes, owner = np.concatenate(pieces), np.concatenate(owner)
    scored = np.ones(codes.size, dtype=bool)
    scored[np.flatnonzero(np.diff(owner, prepend=-1))] = False
    return codes, scored, owner


def windows_bits_per_base(chain: MarkovChain, windows: list[np.ndarray]) -> tuple[float, int]:
    """Bits per base of ``chain`` over ``windows`` (token-id arrays), and the bases scored, each
    window scored alone (in one pass, see :func:`_joined`)."""
    if not windows:
        return float("nan"), 0
    codes, scored, _ = _joined(windows)
    logp = chain._log_probs(codes, scored)
    ok = ~np.isnan(logp)
    count = int(ok.sum())
    return bits_per_base(-float(logp[ok].sum()), count), count


def windows_log_likelihoods(chain: MarkovChain, windows: list[np.ndarray]) -> np.ndarray:
    """(N,) log-likelihood (nats, float64) of each window under ``chain``: the sum over its scored
    bases, each window scored alone, as ``model.score(..., reduce="sum")`` scores a model."""
    if not windows:
        return np.zeros(0)
    codes, scored, owner = _joined(windows)
    logp = chain._log_probs(codes, scored)
    return np.bincount(owner, weights=np.nan_to_num(logp, nan=0.0), minlength=len(windows))
