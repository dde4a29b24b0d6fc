"""``hyenadna generate``: sample new DNA after prompts, to FASTA (see :mod:`hyenadna.inference.generation`).

Every option, the prompts and the output path are checked before the model is loaded, so a
refused run costs nothing and leaves nothing behind; the FASTA appears only when complete.
"""

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
        model: a model name, preset or folder of a causal language model (a fine-tuned model
            folder, one with task.json, is refused: it classifies, it does not generate).
        output: the FASTA to write (it appears only when complete); its folder must exist, and
            it may not be the --prompts file.
        max_new_tokens: bases to sample after each prompt (at least 1; prompt plus new bases
            must fit the model's l_max).
        prompt: one prompt sequence (A/C/G/T).
        prompts: or a FASTA of prompts, one per record; record names must be distinct (they
            name the output records).
        num_samples: samples per prompt, at least 1 (records NAME_sample1 .. NAME_sampleN).
        temperature: divides the logits: 0 is argmax (greedy) decoding; otherwise at least
            1e-4 (smaller values reach float32's limits and already decode greedily).
        top_k: keep the k most probable bases (1-4; 0 keeps all).
        top_p: nucleus sampling: keep the most probable bases whose mass reaches top_p, in (0, 1].
        seed: seed of the sampler, 0 to 2**63-1: the same seed gives the same bases.
        include_prompt: write prompt + new bases; by default the new bases alone.
        batch_size: prompts decoded together, at least 1 (prompts of one length share a batch).
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        overwrite: replace an existing output.
    """
    from hyenadna.checks.values import positive
    from hyenadna.inference.generation import check_sampling
    from hyenadna.io.atomic import atomic_write_text
    from hyenadna.model import load
    from hyenadna.training.trainer import resolve_device

    check_sampling(max_new_tokens, temperature, top_k, top_p, seed, batch_size, flag="--", min_new_tokens=1)
    positive("--num_samples", num_samples)
    device = resolve_device(device)
    if bool(prompt) == bool(prompts):
        raise HyenaDNAError("give either --prompt SEQUENCE or --prompts FASTA")
    _plan_files(model, prompts, output, overwrite)
    _refuse_task_model(model)
    named = _read_prompts(prompts) if prompts else [("prompt", _checked_prompt(prompt))]
    net = load(model, device=device)
    jobs = [(f"{name}_sample{s + 1}", seq) for name, seq in named for s in range(num_samples)]
    start = time.perf_counter()
    new = net.generate([seq for _, seq in jobs], max_new_tokens, temperature, top_k, top_p, seed, batch_size)
    seconds = time.perf_counter() - start
    records = _sample_records(jobs, new, include_prompt, temperature, seed)
    atomic_write_text(output, fasta_text(records))
    total = sum(len(bases) for bases in new)
    return {"records": len(records), "new_bases": total, "seconds": round(seconds, 3),
            "bases_per_s": round(total / seconds, 1) if seconds else None, "output": output}  # fmt: skip


def _plan_files(model: str, prompts: str | None, output: str, overwrite: bool) -> None:
    """The output may not be the prompts or a model file, its folder must exist, and an existing
    one needs ``--overwrite``."""
    from hyenadna.io.file_plan import FilePlan

    plan = FilePlan("generate")
    plan.input("--prompts", prompts)
    plan.input("--model", model if Path(model).exists() else None)
    plan.output("--output", output)
    plan.check()
    if Path(output).exists() and not overwrite:
        raise HyenaDNAError(f"{output} exists; pass --overwrite to replace it")


def _checked_prompt(prompt: str) -> str:
    """The ``--prompt`` sequence, refused unless it is bases."""
    from hyenadna.data.tokenizer import CharacterTokenizer

    CharacterTokenizer().encode_bases(prompt, name="--prompt")
    return prompt


def _sample_records(jobs: list[tuple[str, str]], new: list[str], include_prompt: bool, temperature: float,
                    seed: int) -> list[tuple[str, str]]:  # fmt: skip
    """(header, sequence) of each sample: its name and how it was drawn; the new bases, after the
    prompt with ``include_prompt``."""
    records = []
    for (name, seq), bases in zip(jobs, new):
        header = f"{name} prompt_bases={len(seq)} new_bases={len(bases)} temperature={temperature} seed={seed}"
        records.append((header, (seq + bases) if include_prompt else bases))
    return records


def _refuse_task_model(model: str) -> None:
    """A fine-tuned folder holds a backbone that ``load`` reads, but its head, not a language
    model, is what it was trained for: sampling from it would give bases without meaning."""
    from hyenadna.heads.config import TASK_FILE

    if Path(model).is_dir() and (Path(model) / TASK_FILE).is_file():
        raise HyenaDNAError(
            f"generate needs a language model; {model} is a fine-tuned model (it has {TASK_FILE}): "
            "give the pretrained model it was fine-tuned from"
        )


def _read_prompts(path: str) -> list[tuple[str, str]]:
    """The records of the prompts FASTA, each checked to be bases, with distinct names (the
    output's headers are made from them)."""
    from hyenadna.data.fasta import read_fasta_records
    from hyenadna.data.tokenizer import CharacterTokenizer

    tokenizer = CharacterTokenizer()
    seen: dict[str, int] = {}
    named = []
    for record in read_fasta_records(path):
        if record.name in seen:
            raise HyenaDNAError(
                f"{path}, line {record.line}: prompt name {record.name!r} repeats the record at line "
                f"{seen[record.name]}; output records are named after prompts, so names must be distinct"
            )
        seen[record.name] = record.line
        tokenizer.encode_bases(record.sequence, name=f"{path}, record {record.name!r}")
        named.append((record.name, record.sequence))
    return named
