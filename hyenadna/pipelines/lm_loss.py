"""``hyenadna loss``: bits per base of a model on the records of a FASTA file.

Each record is cut into consecutive windows; a base is scored given the bases before it in the
same window, as :mod:`hyenadna.inference.likelihood` defines it (the next-base distribution renormalised
over A/C/G/T, A/C/G/T targets only), and reported in nats and bits per base. A model that knows
nothing of DNA scores 2 bits per base; anything lower is something learnt.

With ``--trainer.devices`` / ``--trainer.num_nodes`` the batches of windows, numbered across
the whole file, go to the ranks in turn (batch g to rank g mod world size) and the per-record
sums are added over the ranks (:mod:`hyenadna.inference.sharding`); rank 0 reports.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict

import torch

from hyenadna.analysis.lm_loss import fasta_lm_loss
from hyenadna.checks import values as validate
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.sharding import ONE_PROCESS, Processes, launch


def run_loss(
    fasta: str,
    model: str = "tiny-1k",
    window: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    trainer: Processes = ONE_PROCESS,
) -> dict | None:
    """Print the next-base loss (nats and bits per base) of a model on each record of a FASTA file.

    Args:
        fasta: FASTA file (plain or gzip).
        model: a preset (random weights) or a model folder.
        window: bases per window, 2 to the model's l_max (default: l_max).
        batch_size: windows per forward pass, at least 1.
        seed: seed for a preset's random weights, 0 to 2**63-1.
        trainer: run on several processes, devices or nodes (--trainer.devices,
            --trainer.num_nodes, --trainer.accelerator): the ranks share the batches and rank 0
            prints the result; the other ranks return None.
    """
    from hyenadna.model import load

    validate.positive("--batch_size", batch_size)
    if window is not None:
        validate.integer("--window", window, low=2)
    validate.integer("--seed", seed, 0, 2**63 - 1)
    if not os.path.isfile(fasta):  # before the processes start and the model loads
        raise HyenaDNAError(f"FASTA file not found: {fasta}")
    rank = launch(trainer)
    torch.manual_seed(seed)
    net = load(model, device=rank.device if rank else None).eval()
    window = window or net.config.l_max
    if window > net.config.l_max:
        raise HyenaDNAError(f"--window must lie in 2..{net.config.l_max} (the model's l_max), got {window}")
    start = time.perf_counter()
    results = fasta_lm_loss(net, fasta, window=window, batch_size=batch_size, rank=rank)
    seconds = time.perf_counter() - start
    if rank is not None and not rank.leader:
        return None
    records = [{**asdict(r), "bits_per_base": r.bits_per_base} for r in results]
    return {"model": model, "parameters": net.num_parameters(), "window": window, "records": records,
            "bases": sum(r.bases for r in results), "seconds": seconds}  # fmt: skip


def loss_table(result: dict) -> str:
    """The result of :func:`run_loss` as the plain-text table the command prints."""
    lines = [
        f"model {result['model']} ({result['parameters']:,} parameters), window {result['window']}",
        f"{'record':<32} {'bases':>10} {'scored':>10} {'nats/base':>10} {'bits/base':>10}",
    ]
    for r in result["records"]:
        lines.append(
            f"{r['name'][:32]:<32} {r['bases']:>10,} {r['scored']:>10,} {r['nats_per_base']:>10.4f} "
            f"{r['bits_per_base']:>10.4f}"
        )
    bases, seconds = result["bases"], result["seconds"]
    lines.append(f"{bases:,} bases in {seconds:.1f} s ({bases / seconds:,.0f} bases/s)")
    return "\n".join(lines)
