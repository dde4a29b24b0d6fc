"""Next-base loss of a language model: per window, per FASTA record (cut into consecutive windows,
optionally shared between ranks), and in bits per base over equal-length windows. A base is
scored given the bases before it in the same window, as :mod:`hyenadna.inference.likelihood`
defines it (the next-base distribution renormalised over A/C/G/T, A/C/G/T targets only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from hyenadna.checks import values as validate
from hyenadna.data.fasta import read_fasta
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.likelihood import LN2, bits_per_base, next_base_log_probs
from hyenadna.inference.sharding import Rank
from hyenadna.model.hyena_dna import HyenaDNA


@dataclass
class RecordLoss:
    """One FASTA record's loss: its length, the bases scored, and nats (and bits) per scored base."""

    name: str
    bases: int
    scored: int
    """Bases that were predicted: A/C/G/T targets with at least one base of context."""
    nats_per_base: float

    @property
    def bits_per_base(self) -> float:
        return self.nats_per_base / LN2


@torch.no_grad()
def window_loss_sum(model: HyenaDNA, ids: torch.Tensor) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the scored bases of ``ids`` (B, W), and their
    count; position t predicts token t+1 of the same row."""
    _, picked = next_base_log_probs(model(ids)[:, :-1], ids[:, 1:])
    scored = ~picked.isnan()
    return -float(picked[scored].sum()), int(scored.sum())


def fasta_lm_loss(
    model: HyenaDNA, path: str | os.PathLike, window: int, batch_size: int = 8, rank: Rank | None = None
) -> list[RecordLoss]:
    """Loss of ``model`` on each record of ``path``, cut into consecutive windows (with ``rank``:
    this rank's share of the batches, the sums added over the ranks)."""
    validate.positive("batch_size", batch_size)
    validate.integer("window", window)
    if not 2 <= window <= model.config.l_max:
        raise HyenaDNAError(f"window must lie in [2, l_max={model.config.l_max}], got {window}")
    tokenizer = CharacterTokenizer()
    device = next(model.parameters()).device
    model.eval()
    names, lengths, totals, counts = [], [], [], []
    number = 0  # of the batch, counted over the whole file
    for name, seq in read_fasta(path):
        ids = tokenizer.encode(seq, name=name)
        full = ids.numel() // window
        batches = list(ids[: full * window].view(full, window).split(batch_size)) if full else []
        if ids.numel() - full * window >= 2:
            batches.append(ids[full * window :].unsqueeze(0))
        total, count = 0.0, 0
        for batch in batches:
            if rank is None or number % rank.world_size == rank.rank:
                s, c = window_loss_sum(model, batch.to(device))
                total, count = total + s, count + c
            number += 1
        names.append(name)
        lengths.append(ids.numel())
        totals.append(total)
        counts.append(count)
    if rank is not None:
        totals = rank.reduce_sum(torch.tensor(totals, dtype=torch.float64)).tolist()
        counts = [int(c) for c in rank.reduce_sum(torch.tensor(counts, dtype=torch.int64)).tolist()]
    return [
        RecordLoss(name, n, c, t / c if c else float("nan")) for name, n, t, c in zip(names, lengths, totals, counts)
    ]


@torch.no_grad()
def model_bits_per_base(model, windows: list[np.ndarray], batch_size: int = 16) -> tuple[float, int]:
    """Bits per base of ``model`` over equal-length ``windows`` of token ids."""
    total, count = 0.0, 0
    for b in range(0, len(windows), batch_size):
        ids = torch.from_numpy(np.stack(windows[b : b + batch_size]).astype(np.int64))
        s, c = window_loss_sum(model, ids.to(model.device))
        total, count = total + s, count + c
    return bits_per_base(total, count), count
