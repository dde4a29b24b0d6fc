"""Sequence likelihoods under a causal HyenaDNA model: the engine behind ``model.score``.

Base i of a sequence gets ``log p(x_i | x_0 .. x_{i-1})`` as :mod:`hyenadna.inference.likelihood` defines
it (the next-token distribution renormalised over A, C, G and T). The first base has no context
and is not scored (NaN), nor are bases other than A/C/G/T (N, IUPAC codes). Sums and means run
over the scored bases.

Batches come from the batching engine (:mod:`hyenadna.inference.batching`): right-padded, so a base's
score does not depend on what else is in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from hyenadna.data.tokenizer import CharacterTokenizer, pad_ids, reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.batching import encode_sequences, run_batched
from hyenadna.inference.likelihood import LN2, next_base_log_probs
from hyenadna.inference.tiling import Tiling, tiled_per_base, too_long_hint
from hyenadna.modules.modes import eval_mode

if TYPE_CHECKING:
    from hyenadna.model.hyena_dna import HyenaDNA

Reduce = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")


@torch.inference_mode()
def base_log_probs(model: HyenaDNA, rows: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-base log-likelihoods (nats) and per-position entropies (bits) of one batch.

    ``entropy[i]`` is the entropy of the model's A/C/G/T distribution for base i given the
    bases before it (NaN at position 0, like the log-likelihood).
    """
    device = next(model.parameters()).device
    ids = pad_ids(rows, side="right")["input_ids"].to(device)
    logp, picked = next_base_log_probs(model(ids)[:, :-1], ids[:, 1:])  # prediction for base t+1
    entropy = -(logp.exp() * logp).sum(-1) / LN2
    scores, entropies = [], []
    nan = torch.full((ids.shape[0], 1), torch.nan, device=device)
    picked, entropy = torch.cat([nan, picked], 1).cpu().numpy(), torch.cat([nan, entropy], 1).cpu().numpy()
    for i, row in enumerate(rows):
        scores.append(picked[i, : len(row)].astype(np.float64))
        entropies.append(entropy[i, : len(row)].astype(np.float64))
    return scores, entropies


def _reduce(per_base: np.ndarray, how: str) -> float:
    scored = per_base[~np.isnan(per_base)]
    if scored.size == 0:
        return float("nan")
    return float(scored.sum() if how == "sum" else scored.mean())


def score_sequences(
    model: HyenaDNA,
    seqs: Sequence[str] | str,
    reduce: Reduce = "mean",
    rc_average: bool = False,
    batch_size: int = 8,
    return_entropy: bool = False,
    tiling: Tiling | None = None,
):
    """Log-likelihood of each sequence (see the module docstring).

    Returns a float64 array (N,) for ``mean`` / ``sum``, or a list of per-base arrays (L_i,) for
    ``none``. With ``rc_average`` the reverse complement is scored too: totals are averaged, and
    per-base scores are averaged base by base on the forward strand (where one strand leaves a
    base unscored, the other's score stands). ``return_entropy`` adds per-position entropies
    (bits, forward strand) as a second result. ``tiling`` scores sequences longer than the model
    window by window, each base given the left context of the first window that holds it (see
    hyenadna.inference.tiling); without it they are refused.
    """
    if reduce not in REDUCTIONS:
        raise HyenaDNAError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    seqs = [seqs] if isinstance(seqs, str) else list(seqs)
    tokenizer = CharacterTokenizer()
    l_max = model.config.l_max
    tiled = tiling is not None and tiling.enabled
    if tiled:
        tiling.check(l_max)
    else:
        too_long_hint(seqs, l_max)

    def encoded_scores(strings: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        rows = encode_sequences(strings, l_max, min_bases=2, tokenizer=tokenizer, purpose="scoring")
        return _score_rows(model, rows, batch_size)

    def per_base_scores(strings: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if not tiled:
            return encoded_scores(strings)
        both = lambda pieces: [np.stack(pair, axis=-1) for pair in zip(*encoded_scores(pieces))]  # noqa: E731
        stitched = tiled_per_base(strings, l_max, tiling, both)
        return [a[:, 0] for a in stitched], [a[:, 1] for a in stitched]

    with eval_mode(model):
        per_base, entropy = per_base_scores(seqs)
        if rc_average:
            rc_scores, _ = per_base_scores([reverse_complement(s) for s in seqs])
            per_base = [_average_strands(f, r[::-1], reduce) for f, r in zip(per_base, rc_scores)]
    if reduce == "none":
        result = per_base
    elif rc_average:
        result = np.asarray([np.mean(pair) for pair in per_base], dtype=np.float64)
    else:
        result = np.asarray([_reduce(p, reduce) for p in per_base], dtype=np.float64)
    return (result, entropy) if return_entropy else result


def _average_strands(forward: np.ndarray, reverse: np.ndarray, reduce: str):
    """Per-base: the mean of the strands where both are scored; totals: the mean of the totals."""
    if reduce != "none":
        return (_reduce(forward, reduce), _reduce(reverse, reduce))
    return np.where(np.isnan(forward), reverse, np.where(np.isnan(reverse), forward, (forward + reverse) / 2))


def _score_rows(model: HyenaDNA, rows: list[np.ndarray], batch_size: int) -> tuple[list, list]:
    pairs = run_batched(rows, batch_size, lambda batch: list(zip(*base_log_probs(model, batch))))
    return [p[0] for p in pairs], [p[1] for p in pairs]
