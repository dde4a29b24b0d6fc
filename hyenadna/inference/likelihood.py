"""The one definition of a base's log-likelihood, and of bits per base, used by every command.

Base t+1 of a sequence is scored as ``log p(x_{t+1} | x_0 .. x_t)`` where p is the model's
next-token distribution **renormalised over A, C, G and T**: probability the model puts on
special tokens or N does not count against a base, so the number is comparable with any model of
the four bases (an order-k Markov chain, another DNA language model). Only A/C/G/T targets with
at least one base of context are scored; N and IUPAC codes are not. **Bits per base** is the
mean of ``-log2 p`` over the scored bases. A model that has learnt nothing but base frequencies
sits near 2 bits per base on a genome.

``model.score``, ``hyenadna score``, ``hyenadna loss`` and pretraining's ``val/bits_per_base``
all report this number. The training objective and HyenaDNA's own reported loss are the
cross-entropy over the whole padded vocabulary and every target (``val/loss`` and
``val/perplexity`` of pretraining, named so): higher than this by whatever the model still puts
on other tokens.
"""

from __future__ import annotations

import math

import torch

from hyenadna.data.tokenizer import A_ID, T_ID

BASE_IDS = slice(A_ID, T_ID + 1)
LN2 = math.log(2)


def next_base_log_probs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities over A/C/G/T (..., 4; float32, float64 for float64 logits) from next-token
    ``logits`` (..., V), and the log-likelihood (nats) of each target (...), NaN where the target
    is not A/C/G/T."""
    base_logits = logits[..., BASE_IDS]
    logp = torch.log_softmax(base_logits.to(torch.promote_types(base_logits.dtype, torch.float32)), dim=-1)
    is_base = (targets >= A_ID) & (targets <= T_ID)
    picked = logp.gather(-1, (targets - A_ID).clamp(0, 3).unsqueeze(-1)).squeeze(-1)
    return logp, torch.where(is_base, picked, torch.nan)


def bits_per_base(nats_sum: float, scored: int) -> float:
    """Bits per base from the summed negative log-likelihood (nats) of ``scored`` bases."""
    return nats_sum / scored / LN2 if scored else float("nan")
