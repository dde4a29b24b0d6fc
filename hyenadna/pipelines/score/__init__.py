"""Variant effect scores from a VCF/BCF and a genome, and likelihoods of FASTA records: ``hyenadna score``.

For each ALT allele of each record (multi-allelic records are split), a reference window of
``window`` bases is cut from the genome with the REF allele starting at its centre, and an
alternate window is built from the same left flank, the ALT allele, and as much right flank as
keeps the length at ``window`` (so indels compare windows of equal length). The score is

    llr = mean log-likelihood(alt window) - mean log-likelihood(ref window)   (nats per base)

as in Evo 2's zero-shot variant scoring; ``rc_average`` averages it with the same score on the
reverse strand. A record whose REF does not match the genome, whose contig is unknown, or whose
allele is symbolic (``<DEL>``, ``*``, breakends), longer than ``max_allele``
(``allele_too_long``) or longer than the window holds from the variant's start on
(``longer_than_window``: ``window - window // 2`` bases, REF and ALT alike) is reported in the
``status`` column with empty scores; the run goes on.

The TSV is written as ``OUTPUT.partial`` in chunks and renamed when complete; ``resume`` continues
after the last whole chunk. ``vcf_output`` also writes the input VCF with an INFO field
``HYENADNA_LLR`` (one value per ALT) once the TSV is complete.

Every file the run reads or writes is planned before the model loads
(:class:`hyenadna.io.file_plan.FilePlan`): an output that is an input (``--vcf_output`` equal to
``--vcf``), two outputs that are one file, or an output in a folder that does not exist is
refused, as is every count out of its range, before anything is created.
"""

from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path
from typing import Any

from hyenadna.checks.values import integer
from hyenadna.data.variants import LLR_INFO, VariantJob, WindowScorer, variant_jobs
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.sharding import ONE_PROCESS, Processes, Rank, chunked, join_text, launch, run_chunks
from hyenadna.inference.tiling import Tiling
from hyenadna.io.atomic import files_fingerprint, removed_unless_written, run_lock
from hyenadna.pipelines.score.checks import check_combinations, check_counts, check_modes, format_score, plan_files
from hyenadna.pipelines.score.fasta import run_score_fasta
from hyenadna.pipelines.score.resume import open_partial_table, weights_digest

VARIANT_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "status")
LLR_COLUMNS = ("ll_ref", "ll_alt", "llr")
TSV_HEADER = VARIANT_COLUMNS + LLR_COLUMNS


def score_windows(model, jobs: list[VariantJob], rc_average: bool, batch_size: int) -> list[tuple]:
    """(ll_ref, ll_alt, llr) per job, None for jobs without windows."""
    scorable = [j for j in jobs if j.status == "ok"]
    results: dict[int, tuple] = {}
    if scorable:
        seqs = [s for j in scorable for s in (j.ref_window, j.alt_window)]
        means = model.score(seqs, reduce="mean", rc_average=rc_average, batch_size=batch_size)
        for k, job in enumerate(scorable):
            ll_ref, ll_alt = float(means[2 * k]), float(means[2 * k + 1])
            results[id(job)] = (ll_ref, ll_alt, ll_alt - ll_ref)
    return [results.get(id(j)) for j in jobs]


def language_model_scorer(model, rc_average: bool, batch_size: int) -> WindowScorer:
    """Log-likelihood ratios of a language model (module docstring)."""
    return WindowScorer(
        LLR_COLUMNS,
        lambda jobs: score_windows(model, jobs, rc_average, batch_size),  # looked up per call: tests patch it
        [LLR_INFO],
        json.dumps(model.config.to_dict(), sort_keys=True),
    )


def window_scorer(model, rc_average: bool, batch_size: int) -> WindowScorer:
    """The scorer for ``model``: a fine-tuned head (hyenadna.analysis.variant_effects) or a language model."""
    from hyenadna.heads.task_model import TaskModel

    if isinstance(model, TaskModel):
        from hyenadna.analysis.variant_effects import head_scorer

        return head_scorer(model, rc_average, batch_size)
    return language_model_scorer(model, rc_average, batch_size)


SEED_RANGE = (-(2**63), 2**64 - 1)
"""Seeds ``torch.manual_seed`` takes."""


def run_score_vcf(
    model,
    vcf: str,
    genome: str,
    output: str,
    window: int = 1024,
    rc_average: bool = False,
    max_allele: int = 100,
    batch_size: int = 8,
    chunk: int = 64,
    vcf_output: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    rank: Rank | None = None,
) -> dict | None:
    """Score every ALT allele of ``vcf`` against ``genome`` with a language model (log-likelihood
    ratios) or a fine-tuned model (changes of its outputs); returns counts per status. With
    ``rank`` (one process of several) the ranks share the chunks and rank 0 merges them
    (:mod:`hyenadna.inference.sharding`); the other ranks return None."""
    from hyenadna.data.genome import Genome

    check_counts(batch_size, chunk, max_allele)
    scorer = window_scorer(model, rc_average, batch_size)
    window = _check_window(model, window)
    plan_files(output, vcf=vcf, genome=genome, vcf_output=vcf_output)
    if vcf_output:
        from hyenadna.io.vcf_annotate import check_info_fields

        check_info_fields(vcf, scorer.info)
    header = "\t".join(VARIANT_COLUMNS + scorer.columns)
    settings = {
        "model": scorer.model,
        "weights": weights_digest(model),
        "files": files_fingerprint("", [vcf, genome]),
        "options": {"window": window, "rc_average": rc_average, "max_allele": max_allele},
    }
    if rank is not None:
        out = _score_vcf_sharded(rank, scorer, vcf, genome, output, window, max_allele, chunk, settings, header,
                                 resume, overwrite, progress)  # fmt: skip
        if out is None:
            return None
        counts = _status_counts(out)
        done = 0
    else:
        out, counts, done = _score_vcf_one_process(
            scorer, vcf, genome, output, window, max_allele, chunk, settings, header, resume, overwrite, progress
        )
    if vcf_output:
        from hyenadna.io.vcf_annotate import annotate_vcf

        annotate_vcf(vcf, out, vcf_output, dict(Genome(genome).contigs), scorer.info)
    return {"alleles": sum(counts.values()) + done, "status": counts, "output": str(out)}


def _check_window(model, window: int) -> int:
    """``window``, refused unless it lies between 2 and the model's longest input."""
    longest = getattr(model, "max_length", None) or model.config.l_max
    window = integer("--window", window)
    if not 2 <= window <= longest:
        raise HyenaDNAError(f"window must lie in [2, {longest}] (the model's longest input), got {window}")
    return window


def _score_vcf_one_process(scorer, vcf, genome, output, window, max_allele, chunk, settings, header, resume,
                           overwrite, progress) -> tuple[Path, dict[str, int], int]:  # fmt: skip
    """Stream the scores to ``OUTPUT.partial`` chunk by chunk, rename it when complete; returns
    the output, the statuses counted in this run and the rows a resumed run found written."""
    from tqdm import tqdm

    from hyenadna.data.genome import Genome

    fresh = not (resume and Path(str(output) + ".partial").exists())
    counts: dict[str, int] = {}
    with run_lock(Path(output)):
        out, partial, done = open_partial_table(output, header, resume, overwrite, settings)
        bar = tqdm(initial=done, unit=" allele", desc="score", disable=not progress, mininterval=1.0)
        with removed_unless_written(partial, fresh, lambda: done + sum(counts.values())), open(partial, "a") as fh:
            jobs = variant_jobs(vcf, Genome(genome), window, max_allele)
            for _ in islice(jobs, done):
                pass
            while batch := list(islice(jobs, chunk)):
                fh.write("".join(_rows(batch, scorer.score(batch), counts, len(scorer.columns))))
                fh.flush()
                bar.update(len(batch))
        bar.close()
        os.replace(partial, out)
        partial.with_name(partial.name + ".json").unlink(missing_ok=True)
    return out, counts, done


def _score_vcf_sharded(rank, scorer, vcf, genome, output, window, max_allele, chunk, settings, header, resume,
                       overwrite, progress) -> Path | None:  # fmt: skip
    """This rank's chunks of alleles to ``OUTPUT.parts/``; rank 0 merges them (others: None)."""
    from tqdm import tqdm

    from hyenadna.data.genome import Genome

    width = len(scorer.columns)

    def writer(batch: list[VariantJob]):
        text = "".join(_rows(batch, scorer.score(batch), {}, width))
        return lambda tmp: Path(tmp).write_text(text)

    jobs = variant_jobs(vcf, Genome(genome), window, max_allele)
    bar = tqdm(unit=" allele", desc="score", disable=not (progress and rank.leader), mininterval=1.0)
    settings = {**settings, "chunk": chunk, "header": header}
    merge = join_text(header + "\n")
    done = run_chunks(output, rank, settings, ".tsv", resume, overwrite, chunked(jobs, chunk), writer, merge, bar)
    return Path(output) if done else None


def _status_counts(table: Path) -> dict[str, int]:
    """Alleles per status in a scores TSV."""
    counts: dict[str, int] = {}
    with open(table) as fh:
        column = next(fh).rstrip("\n").split("\t").index("status")
        for line in fh:
            status = line.split("\t")[column]
            counts[status] = counts.get(status, 0) + 1
    return counts


def _rows(batch: list[VariantJob], scores: list, counts: dict[str, int], width: int = 3) -> list[str]:
    """TSV lines of one chunk of alleles (``width`` score columns), counting their statuses into ``counts``."""
    lines = []
    for job, score in zip(batch, scores):
        counts[job.status] = counts.get(job.status, 0) + 1
        fields = [job.chrom, str(job.pos), job.id, job.ref, job.alt, job.status]
        fields += [format_score(v) for v in (score or (None,) * width)]
        lines.append("\t".join(fields) + "\n")
    return lines


def run_score(
    output: str,
    model: str | None = None,
    head_model: str | None = None,
    vcf: str | None = None,
    genome: str | None = None,
    fasta: str | None = None,
    window: int | None = None,
    rc_average: bool = False,
    max_allele: int = 100,
    batch_size: int = 8,
    chunk: int = 64,
    vcf_output: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    tiling: Tiling | None = None,
    per_base_output: str | None = None,
    trainer: Processes = ONE_PROCESS,
) -> dict | None:
    """Score variants of a VCF/BCF against a genome (language-model LLR or a head's change), or FASTA records.

    Args:
        output: the TSV to write (OUTPUT.partial until complete); its folder must exist, and
            no output may be an input or another output.
        model: a language model: a name, preset or model folder (ours or released).
        head_model: or a fine-tuned model folder (Hyena head or CNN): each output's change,
            alt minus ref (probabilities for classifiers, values for regression).
        vcf: variants (VCF, bgzip or gzip VCF, BCF); multi-allelic records are split per allele.
        genome: the genome FASTA the VCF refers to (REF alleles are checked against it).
        fasta: instead of a VCF: score every record of this FASTA (language models).
        window: bases per reference and alternate window, centred on the variant (default:
            1024 for a language model, the training length for a fine-tuned model); 2 to the
            model's longest input. REF and ALT must fit in window - window // 2 bases (status
            longer_than_window otherwise).
        rc_average: average the score with the reverse strand's.
        max_allele: longer REF or ALT alleles are reported (status allele_too_long), not
            scored; at least 1.
        batch_size: windows per forward pass; at least 1.
        chunk: alleles per write (at least 1); a stopped run resumes after its last whole chunk.
        vcf_output: also write the VCF with INFO/HYENADNA_LLR, or INFO/HYENADNA_DELTA_<label> per
            output of a fine-tuned model (.vcf; .vcf.gz, bgzipped with a tabix index; .bcf, with a
            CSI index). Contigs and tags the VCF uses without declaring them are declared.
        resume: continue OUTPUT.partial left by a stopped run.
        overwrite: replace an existing OUTPUT.
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N; a device this
            machine lacks is refused, with --trainer too.
        seed: seed for a preset's random weights (-2**63 to 2**64 - 1).
        progress: show a progress bar.
        tiling: with --fasta, records longer than the model are scored in windows
            (--tiling.window, --tiling.stride; each base keeps the left context of the first
            window that holds it: see hyenadna.inference.tiling). Off by default: it changes numbers.
        per_base_output: with --fasta, also write every base's log-likelihood to this TSV.
        trainer: with --vcf, run on several processes, devices or nodes (--trainer.devices,
            --trainer.num_nodes, --trainer.accelerator): the ranks share the chunks of alleles
            and rank 0 merges them into OUTPUT (see hyenadna.inference.sharding).
    """
    check_modes(model, head_model, vcf, fasta, genome, trainer.distributed)
    check_combinations(vcf, fasta, genome, vcf_output, per_base_output, tiling)
    check_counts(batch_size, chunk, max_allele, window)
    integer("--seed", seed, *SEED_RANGE)
    plan_files(output, vcf, genome, fasta, model, vcf_output, per_base_output, head_model)
    where, rank = _start_processes(output, bool(vcf), trainer, resume, device)
    net, window = _load_model(model, head_model, where, seed, window)
    if fasta:
        return run_score_fasta(net, fasta, output, rc_average, batch_size, overwrite, tiling, per_base_output)
    return run_score_vcf(
        net, vcf, genome, output, window, rc_average, max_allele, batch_size, chunk, vcf_output, resume, overwrite,
        progress, rank,
    )  # fmt: skip


def _start_processes(output: str, vcf: bool, trainer: Processes, resume: bool, device: str) -> tuple[Any, Rank | None]:
    """The device to load on, and this process's rank when the run goes through a chunk folder
    (several processes, or the folder such a run left); None when it writes ``OUTPUT.partial``
    alone. The device is checked first, on every path: a missing CUDA is one line, not a traceback."""
    from hyenadna.inference.sharding import alone, continues_chunks
    from hyenadna.training.trainer import resolve_device

    where = resolve_device(device)
    in_chunks = vcf and continues_chunks(output, trainer.distributed, resume)
    rank = launch(trainer)
    if rank is not None:
        where = rank.device
    elif in_chunks:  # a chunk folder left by several processes: continued through its chunks
        rank = alone(where)
    return where, rank


def _load_model(
    model: str | None, head_model: str | None, where: Any, seed: int, window: int | None
) -> tuple[Any, int]:
    """The language model (a preset's random weights from ``seed``) or the fine-tuned model, and
    the window by default: 1024 bases, or the fine-tuned model's training length."""
    import torch

    torch.manual_seed(seed)
    if head_model:
        from hyenadna.heads.loading import load_task_model

        net = load_task_model(head_model, map_location=where).eval()
        return net, window or net.head_config.train_length or net.max_length
    from hyenadna.model import load

    return load(model, device=where), window or 1024
