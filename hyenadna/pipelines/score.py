"""Variant effect scores from a VCF/BCF and a genome, and likelihoods of FASTA records: ``hyenadna score``.

For each ALT allele of each record (multi-allelic records are split), a reference window of
``window`` bases is cut from the genome with the REF allele starting at its centre, and an
alternate window is built from the same left flank, the ALT allele, and as much right flank as
keeps the length at ``window`` (so indels compare windows of equal length). The score is

    llr = mean log-likelihood(alt window) - mean log-likelihood(ref window)   (nats per base)

as in Evo 2's zero-shot variant scoring; ``rc_average`` averages it with the same score on the
reverse strand. A record whose REF does not match the genome, whose contig is unknown, or whose
allele is symbolic (``<DEL>``, ``*``, breakends) or longer than ``max_allele`` is reported in the
``status`` column with empty scores; the run goes on.

The TSV is written as ``OUTPUT.partial`` in chunks and renamed when complete; ``resume`` continues
after the last whole chunk. ``vcf_output`` also writes the input VCF with an INFO field
``HYENADNA_LLR`` (one value per ALT) once the TSV is complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from hyenadna.atomic import atomic_write_text, files_fingerprint, partial_output, removed_unless_written, run_lock
from hyenadna.errors import HyenaDNAError

TSV_HEADER = ("chrom", "pos", "id", "ref", "alt", "status", "ll_ref", "ll_alt", "llr")
INFO_KEY = "HYENADNA_LLR"
BASES = set("ACGT")


@dataclass
class VariantJob:
    """One ALT allele of one VCF record, with its windows when they could be built."""

    chrom: str
    pos: int  # 1-based, as in the VCF
    id: str
    ref: str
    alt: str
    status: str = "ok"
    ref_window: str = ""
    alt_window: str = ""


def open_variants(path: str | os.PathLike):
    """A pysam VariantFile for VCF, bgzipped VCF or BCF; plain-gzip VCFs go through the cache."""
    import pysam

    from hyenadna.data.files import compression, decompress_to_cache

    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"VCF file not found: {path}")
    source = decompress_to_cache(path) if compression(path) == "gzip" else path
    previous = pysam.set_verbosity(0)  # htslib's header warnings are not the user's problem here
    try:
        return pysam.VariantFile(str(source))
    except (OSError, ValueError) as exc:
        raise HyenaDNAError(f"{path}: cannot open as VCF/BCF ({exc})") from None
    finally:
        pysam.set_verbosity(previous)


def variant_jobs(vcf: str | os.PathLike, genome, window: int, max_allele: int = 100) -> Iterator[VariantJob]:
    """ALT alleles of the VCF in file order, with reference and alternate windows."""
    handle = open_variants(vcf)
    records = iter(handle)
    number = 0  # of the record being read, counted from 1
    try:
        while True:
            number += 1
            try:
                record = next(records)
            except StopIteration:
                return
            except (OSError, ValueError) as exc:
                raise HyenaDNAError(f"{vcf}: cannot read record {number} ({exc})") from None
            for alt in record.alts or ():
                job = VariantJob(record.chrom, record.pos, record.id or ".", record.ref, alt)
                _build_windows(job, genome, window, max_allele)
                yield job
    finally:
        handle.close()


def _build_windows(job: VariantJob, genome, window: int, max_allele: int) -> None:
    if job.alt.startswith("<") or job.alt == "*" or "[" in job.alt or "]" in job.alt or job.alt == ".":
        job.status = "symbolic_allele"
        return
    if not set(job.ref.upper()) <= BASES or not set(job.alt.upper()) <= BASES:
        job.status = "invalid_allele"  # IUPAC codes, N or other letters: no base to score
        return
    if max(len(job.ref), len(job.alt)) > max_allele:
        job.status = "allele_too_long"
        return
    if job.chrom not in genome.contigs:
        job.status = "unknown_contig"
        return
    start0 = job.pos - 1
    if start0 < 0 or start0 + len(job.ref) > genome.contigs[job.chrom]:
        job.status = "out_of_range"
        return
    reference = genome.fetch(job.chrom, start0, start0 + len(job.ref)).upper()
    if "N" in reference:
        job.status = "n_region"  # the genome does not know the bases the variant changes
        return
    if reference != job.ref.upper():
        job.status = "ref_mismatch"
        return
    left_start = start0 - window // 2
    left = genome.fetch(job.chrom, left_start, start0, pad=True)
    job.ref_window = genome.fetch(job.chrom, left_start, left_start + window, pad=True)
    right = window - len(left) - len(job.alt)
    if right < 0:
        job.status = "allele_too_long"
        return
    after = start0 + len(job.ref)
    job.alt_window = left + job.alt + genome.fetch(job.chrom, after, after + right, pad=True)


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


def _format(value: float | None) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.6g}"


def _resume_partial(partial: Path, header: str) -> int:
    """Rows already written to ``partial`` (a torn last line is cut off); checks the header."""
    with open(partial, "rb+") as fh:
        data = fh.read()
        whole = data[: data.rfind(b"\n") + 1]
        fh.seek(len(whole))
        fh.truncate()
    lines = whole.decode().splitlines()
    if not lines or lines[0] != header:
        raise HyenaDNAError(f"{partial}: cannot resume, it was written with other columns")
    return len(lines) - 1


def _open_output(output: str, header: str, resume: bool, overwrite: bool, settings: dict) -> tuple[Path, Path, int]:
    """The output, its ``.partial`` and the rows already in it. The run's settings and input
    fingerprints go to ``OUTPUT.partial.json`` beside it; a resume with others is refused."""
    out, partial = partial_output(output, resume, overwrite)
    recorded = partial.with_name(partial.name + ".json")
    if resume and partial.exists():
        try:
            before = json.loads(recorded.read_text())
        except (OSError, ValueError):
            message = f"{partial}: cannot resume, its settings ({recorded.name}) are missing or torn"
            raise HyenaDNAError(message) from None
        changed = sorted(k for k in settings.keys() | before.keys() if settings.get(k) != before.get(k))
        if changed:
            raise HyenaDNAError(f"{partial}: cannot resume, its {', '.join(changed)} differ from this run's")
        return out, partial, _resume_partial(partial, header)
    atomic_write_text(recorded, json.dumps(settings, sort_keys=True))
    partial.write_text(header + "\n")
    return out, partial, 0


def _weights_digest(model) -> str:
    """A digest of the model's weights (the first 4 KB of each tensor, with the names): a
    resume with another model, or other weights under the same name, is refused."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8)[:4096].numpy().tobytes())
    return digest.hexdigest()


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
) -> dict:
    """Score every ALT allele of ``vcf`` against ``genome``; returns counts per status."""
    from tqdm import tqdm

    from hyenadna.data.genome import Genome

    if not 2 <= window <= model.config.l_max:
        raise HyenaDNAError(f"window must lie in [2, l_max={model.config.l_max}], got {window}")
    header = "\t".join(TSV_HEADER)
    fresh = not (resume and Path(str(output) + ".partial").exists())
    settings = {
        "model": json.dumps(model.config.to_dict(), sort_keys=True),
        "weights": _weights_digest(model),
        "files": files_fingerprint("", [vcf, genome]),
        "options": {"window": window, "rc_average": rc_average, "max_allele": max_allele},
    }
    counts: dict[str, int] = {}
    with run_lock(Path(output)):
        out, partial, done = _open_output(output, header, resume, overwrite, settings)
        bar = tqdm(initial=done, unit=" allele", desc="score", disable=not progress, mininterval=1.0)
        with removed_unless_written(partial, fresh, lambda: done + sum(counts.values())), open(partial, "a") as fh:
            jobs = variant_jobs(vcf, Genome(genome), window, max_allele)
            for _ in islice(jobs, done):
                pass
            while batch := list(islice(jobs, chunk)):
                fh.write("".join(_rows(batch, score_windows(model, batch, rc_average, batch_size), counts)))
                fh.flush()
                bar.update(len(batch))
        bar.close()
        os.replace(partial, out)
        partial.with_name(partial.name + ".json").unlink(missing_ok=True)
    if vcf_output:
        annotate_vcf(vcf, out, vcf_output, dict(Genome(genome).contigs))
    return {"alleles": sum(counts.values()) + done, "status": counts, "output": str(out)}


def _rows(batch: list[VariantJob], scores: list, counts: dict[str, int]) -> list[str]:
    """TSV lines of one chunk of alleles, counting their statuses into ``counts``."""
    lines = []
    for job, score in zip(batch, scores):
        counts[job.status] = counts.get(job.status, 0) + 1
        fields = [job.chrom, str(job.pos), job.id, job.ref, job.alt, job.status]
        fields += [_format(v) for v in (score or (None, None, None))]
        lines.append("\t".join(fields) + "\n")
    return lines


def annotate_vcf(vcf: str, scores_tsv: Path, output: str, contigs: dict[str, int] | None = None) -> None:
    """Write ``vcf`` with ``INFO/HYENADNA_LLR`` (Number=A) from the scores TSV, in one pass.
    ``contigs`` (the genome's names and lengths) are declared in the header where the VCF lacks
    them: htslib cannot write a record whose contig the header does not name."""
    import csv

    import pysam

    from hyenadna.atomic import atomic_write

    def write(tmp: str) -> None:
        with open_variants(vcf) as src, open(scores_tsv) as fh:
            rows = csv.DictReader(fh, delimiter="\t")
            for name, length in (contigs or {}).items():
                if name not in src.header.contigs:  # before any record is read: records parse against it
                    src.header.contigs.add(name, length=length)
            header = src.header.copy()
            header.info.add(INFO_KEY, "A", "Float", "HyenaDNA log-likelihood ratio, alt minus ref (nats per base)")
            mode = "wz" if output.endswith(".gz") else ("wb" if output.endswith(".bcf") else "w")
            with pysam.VariantFile(tmp, mode, header=header) as dst:
                for record in src:
                    record.translate(dst.header)
                    values = []
                    for alt in record.alts or ():
                        row = next(rows)
                        if (row["chrom"], int(row["pos"]), row["alt"]) != (record.chrom, record.pos, alt):
                            raise HyenaDNAError(f"{scores_tsv} does not follow {vcf} at {record.chrom}:{record.pos}")
                        values.append(float(row["llr"]) if row["llr"] else None)
                    if values and any(v is not None for v in values):
                        record.info[INFO_KEY] = tuple(values)
                    dst.write(record)

    atomic_write(output, write)
    index_variants(output)


def index_variants(path: str) -> str | None:
    """Index a compressed VCF (``.tbi``, tabix) or a BCF (``.csi``) so that tools can query
    regions of it; a plain ``.vcf`` gets none, nor does a VCF whose records are not sorted (a
    warning says so; the file itself is complete). Returns the index's path."""
    import warnings

    import pysam

    try:
        if path.endswith(".gz"):
            pysam.tabix_index(path, preset="vcf", force=True)
            return path + ".tbi"
        if path.endswith(".bcf"):
            pysam.bcftools.index(path, "--force")
            return path + ".csi"
    except (OSError, pysam.utils.SamtoolsError) as exc:
        warnings.warn(f"{path} is not indexed: its records are not sorted by position ({exc})", stacklevel=2)
    return None


def run_score_fasta(
    model,
    fasta: str,
    output: str,
    rc_average: bool = False,
    batch_size: int = 8,
    overwrite: bool = False,
) -> dict:
    """Log-likelihood of every record of a FASTA (sum and mean over scored bases) to a TSV."""
    from hyenadna.atomic import atomic_write
    from hyenadna.data.fasta import read_fasta_records

    out = Path(output)
    if out.exists() and not overwrite:
        raise HyenaDNAError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    records = list(read_fasta_records(fasta))
    for r in records:
        if len(r.sequence) > model.config.l_max:
            raise HyenaDNAError(
                f"{fasta}, line {r.line}: record {r.name!r} has {len(r.sequence):,} bases, "
                f"more than the model's l_max {model.config.l_max:,}"
            )
    per_base = model.score([r.sequence for r in records], reduce="none", batch_size=batch_size)
    both = model.score([r.sequence for r in records], "mean", rc_average=True) if rc_average else None
    lines = ["name\tlength\tscored\tll_sum\tll_mean" + ("\tll_mean_both_strands" if rc_average else "")]
    for k, (r, scores) in enumerate(zip(records, per_base)):
        scored = scores[~np.isnan(scores)]
        fields = [r.name, str(len(r.sequence)), str(scored.size), _format(scored.sum()), _format(scored.mean())]
        if both is not None:
            fields.append(_format(both[k]))
        lines.append("\t".join(fields))
    atomic_write(out, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    return {"records": len(records), "output": str(out)}


def run_score(
    model: str,
    output: str,
    vcf: str | None = None,
    genome: str | None = None,
    fasta: str | None = None,
    window: int = 1024,
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
) -> dict:
    """Score variants of a VCF/BCF against a genome (log-likelihood ratio alt - ref), or every record of a FASTA.

    Args:
        model: a preset, a model folder (ours or released).
        output: the TSV to write (OUTPUT.partial until complete).
        vcf: variants (VCF, bgzip or gzip VCF, BCF); multi-allelic records are split per allele.
        genome: the genome FASTA the VCF refers to (REF alleles are checked against it).
        fasta: instead of a VCF: score every record of this FASTA.
        window: bases per reference and alternate window, centred on the variant.
        rc_average: average the score with the reverse strand's.
        max_allele: longer REF or ALT alleles are reported, not scored.
        batch_size: windows per forward pass.
        chunk: alleles per write; a stopped run resumes after its last whole chunk.
        vcf_output: also write the VCF with INFO/HYENADNA_LLR (.vcf; .vcf.gz, bgzipped with a tabix
            index; .bcf, with a CSI index).
        resume: continue OUTPUT.partial left by a stopped run.
        overwrite: replace an existing OUTPUT.
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        seed: seed for a preset's random weights.
        progress: show a progress bar.
    """
    import torch

    from hyenadna import load
    from hyenadna.pipelines.common import resolve_device

    if bool(vcf) == bool(fasta):
        raise HyenaDNAError("give either --vcf (with --genome) or --fasta")
    if vcf and not genome:
        raise HyenaDNAError("--vcf needs the --genome FASTA its coordinates refer to")
    torch.manual_seed(seed)
    net = load(model, device=resolve_device(device))
    if fasta:
        return run_score_fasta(net, fasta, output, rc_average, batch_size, overwrite)
    return run_score_vcf(
        net, vcf, genome, output, window, rc_average, max_allele, batch_size, chunk, vcf_output, resume, overwrite,
        progress,
    )  # fmt: skip
