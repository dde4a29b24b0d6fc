"""``hyenadna generate``: sample new DNA after prompts, to FASTA (see :mod:`hyenadna.generation`)."""

from __future__ import annotations

import time
from pathlib import Path

from hyenadna.data.fasta import fasta_text
from hyenadna.errors import HyenaDNAError


def run_generate(
    model: str,
    output: str,
    max_new_tokens: int,
    prompt: str | None = None,
    prompts: str | None = None,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    include_prompt: bool = False,
    batch_size: int = 8,
    device: str = "auto",
    overwrite: bool = False,
) -> dict:
    """Sample new bases after prompts from a language model, to FASTA.

    Args:
        model: a model name, preset or folder (a causal language model; not a fine-tuned head).
        output: the FASTA to write (it appears only when complete).
        max_new_tokens: bases to sample after each prompt.
        prompt: one prompt sequence.
        prompts: or a FASTA of prompts, one per record.
        num_samples: samples per prompt (records NAME_sample1 .. NAME_sampleN).
        temperature: divides the logits; 0 is argmax (greedy) decoding.
        top_k: keep the k most probable bases (1-4; 0 keeps all).
        top_p: nucleus sampling: keep the most probable bases whose mass reaches top_p.
        seed: seed of the sampler: the same seed gives the same bases.
        include_prompt: write prompt + new bases; by default the new bases alone.
        batch_size: prompts decoded together (prompts of one length share a batch).
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        overwrite: replace an existing output.
    """
    from hyenadna import load
    from hyenadna.atomic import atomic_write_text
    from hyenadna.data.fasta import read_fasta
    from hyenadna.pipelines.common import resolve_device

    if Path(output).exists() and not overwrite:
        raise HyenaDNAError(f"{output} exists; pass --overwrite to replace it")
    if bool(prompt) == bool(prompts):
        raise HyenaDNAError("give either --prompt SEQUENCE or --prompts FASTA")
    if num_samples < 1:
        raise HyenaDNAError(f"num_samples must be >= 1, got {num_samples}")
    named = [("prompt", prompt)] if prompt else list(read_fasta(prompts))
    net = load(model, device=resolve_device(device))
    jobs = [(f"{name}_sample{s + 1}", seq) for name, seq in named for s in range(num_samples)]
    start = time.perf_counter()
    new = net.generate([seq for _, seq in jobs], max_new_tokens, temperature, top_k, top_p, seed, batch_size)
    seconds = time.perf_counter() - start
    records = []
    for (name, seq), bases in zip(jobs, new):
        header = f"{name} prompt_bases={len(seq)} new_bases={len(bases)} temperature={temperature} seed={seed}"
        records.append((header, (seq + bases) if include_prompt else bases))
    atomic_write_text(output, fasta_text(records))
    total = len(jobs) * max_new_tokens
    return {"records": len(records), "new_bases": total, "seconds": round(seconds, 3),
            "bases_per_s": round(total / seconds, 1) if seconds else None, "output": output}  # fmt: skip
