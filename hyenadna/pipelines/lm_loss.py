"""Next-base loss of a model on the records of a FASTA file.

The loss is the model's cross-entropy for each base given the bases before it in the same
window, in nats and in bits per base. A model that knows nothing of DNA scores about
log2(4) = 2 bits per base on a genome (log2 16 = 4 bits if it has not even learnt that only
A, C, G, T occur); anything lower is something learnt.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hyenadna.data.fasta import read_fasta
from hyenadna.errors import HyenaDNAError
from hyenadna.model import HyenaDNA
from hyenadna.tokenizer import A_ID, T_ID, CharacterTokenizer


@dataclass
class RecordLoss:
    name: str
    bases: int
    scored: int
    """Bases that were predicted: A/C/G/T targets with at least one base of context."""
    nats_per_base: float

    @property
    def bits_per_base(self) -> float:
        return self.nats_per_base / math.log(2)


@torch.no_grad()
def window_loss_sum(model: HyenaDNA, ids: torch.Tensor) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) over A/C/G/T targets, and their count.

    ``ids`` is (B, W); position t predicts token t+1 of the same row.
    """
    logits = model(ids)[:, :-1].float()
    targets = ids[:, 1:]
    scored = (targets >= A_ID) & (targets <= T_ID)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return float(loss[scored.reshape(-1)].sum()), int(scored.sum())


def fasta_lm_loss(model: HyenaDNA, path: str | os.PathLike, window: int, batch_size: int = 8) -> list[RecordLoss]:
    """Loss of ``model`` on each record of ``path``, cut into consecutive windows."""
    if not 2 <= window <= model.config.l_max:
        raise HyenaDNAError(f"window must lie in [2, l_max={model.config.l_max}], got {window}")
    tokenizer = CharacterTokenizer()
    device = next(model.parameters()).device
    model.eval()
    results = []
    for name, seq in read_fasta(path):
        ids = tokenizer.encode(seq, name=name)
        full = ids.numel() // window
        batches = list(ids[: full * window].view(full, window).split(batch_size))
        if ids.numel() - full * window >= 2:
            batches.append(ids[full * window :].unsqueeze(0))
        total, count = 0.0, 0
        for batch in batches:
            s, c = window_loss_sum(model, batch.to(device))
            total, count = total + s, count + c
        results.append(RecordLoss(name, ids.numel(), count, total / count if count else float("nan")))
    return results
