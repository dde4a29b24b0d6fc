"""The checks of ``hyenadna score`` that run before anything is loaded or created: the files
it will touch (:mod:`hyenadna.io.file_plan`), the ranges of its counts, the options of the other
mode; and how a score is written in its tables."""

from __future__ import annotations

import numpy as np

from hyenadna.checks.values import integer, positive
from hyenadna.errors import HyenaDNAError
from hyenadna.io.file_plan import FilePlan

OUTPUT_COMPANIONS = (".partial", ".partial.json", ".parts", ".lock")
"""Files and folders a ``--vcf`` run writes beside OUTPUT (resume state, chunks of several processes, the lock)."""


def plan_files(
    output: str,
    vcf: str | None = None,
    genome: str | None = None,
    fasta: str | None = None,
    model: str | None = None,
    vcf_output: str | None = None,
    per_base_output: str | None = None,
    head_model: str | None = None,
) -> FilePlan:
    """The files of one ``score`` run, checked (:mod:`hyenadna.io.file_plan`): no output may be an
    input (the VCF, the genome, the FASTA, a file of the model folder) or another output, and
    each output's folder must exist. Raises HyenaDNAError; creates nothing."""
    from hyenadna.io.vcf_annotate import index_suffix

    plan = FilePlan("score")
    plan.input("--vcf", vcf)
    plan.input("--genome", genome)
    plan.input("--fasta", fasta)
    plan.model("--model", model)  # a folder's files; a name or preset is no file
    plan.model("--head_model", head_model)
    plan.output("--output", output, companions=OUTPUT_COMPANIONS if vcf else ())
    suffix = index_suffix(vcf_output) if vcf_output else None
    plan.output("--vcf_output", vcf_output, companions=(suffix,) if suffix else ())
    plan.output("--per_base_output", per_base_output)
    return plan.check()


def check_counts(batch_size: int, chunk: int = 1, max_allele: int = 1, window: int | None = None) -> None:
    """Range checks of the counts (HyenaDNAError naming the option); the window's upper bound,
    the model's longest input, is checked once the model is loaded."""
    positive("--batch_size", batch_size)
    positive("--chunk", chunk)
    positive("--max_allele", max_allele)
    if window is not None:
        integer("--window", window, low=2)


def check_modes(model: str | None, head_model: str | None, vcf: str | None, fasta: str | None, genome: str | None,
                distributed: bool) -> None:  # fmt: skip
    """One model (language or fine-tuned) and one input (a VCF with its genome, or a FASTA), in a
    combination the run can serve."""
    if bool(model) == bool(head_model):
        raise HyenaDNAError("give either --model (a language model) or --head_model (a fine-tuned model folder)")
    if bool(vcf) == bool(fasta):
        raise HyenaDNAError("give either --vcf (with --genome) or --fasta")
    if vcf and not genome:
        raise HyenaDNAError("--vcf needs the --genome FASTA its coordinates refer to")
    if head_model and fasta:
        raise HyenaDNAError("a fine-tuned model's predictions on FASTA records: use `hyenadna predict`")
    if fasta and distributed:
        raise HyenaDNAError("--trainer.devices/num_nodes spread --vcf scoring; --fasta runs in one process")


def check_combinations(vcf, fasta, genome, vcf_output, per_base_output, tiling) -> None:
    """Options that belong to the other mode are refused, not ignored."""
    if fasta and genome:
        raise HyenaDNAError("--genome goes with --vcf; --fasta scores its own records")
    if fasta and vcf_output:
        raise HyenaDNAError("--vcf_output annotates a --vcf; with --fasta there is no VCF to annotate")
    if vcf and per_base_output:
        raise HyenaDNAError("--per_base_output goes with --fasta; --vcf writes one row per allele")
    if vcf and tiling is not None and tiling.enabled:
        raise HyenaDNAError("--tiling.* goes with --fasta; --vcf scores windows of --window bases")


def format_score(value: float | None) -> str:
    """A score as the TSVs write it: 6 significant digits, empty for a missing or NaN value."""
    return "" if value is None or np.isnan(value) else f"{value:.6g}"
