"""The ``hyenadna`` command.

Subcommands, each configurable from YAML (``--config recipe.yaml``) and flags (``--trainer.devices 2``),
with ``--print_config`` to show the resolved configuration and ``--help`` for every option:

* ``pretrain``: next-base pretraining on FASTA genomes;
* ``finetune``: fine-tune a head (and the backbone) on labelled sequences;
* ``predict``: per-sequence probabilities or values of a fine-tuned model, to TSV;
* ``embed``: sequence embeddings of FASTA records, BED regions or BAM reads, to HDF5;
* ``score``: variant effect scores (VCF + genome) or sequence log-likelihoods (FASTA), to TSV;
* ``loss``: next-base loss of a model on a FASTA file;
* ``info``: a model's configuration and parameter count, and the runtime (allocator, threads).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.embed import EmbedInput
from hyenadna.pipelines.optim import OptimOptions
from hyenadna.pipelines.options import (
    FinetuneOptions,
    HeadOptions,
    LabelledData,
    ModelOptions,
    PretrainData,
    TrainerOptions,
)
from hyenadna.runtime import reexec_with_jemalloc

# Defaults shown by --print_config; instances are never mutated.
_MODEL, _OPTIM, _TRAINER = ModelOptions(), OptimOptions(), TrainerOptions()
_FT_OPTIM = OptimOptions(lr=1e-3, weight_decay=0.01, warmup_steps=20)


def pretrain(
    data: PretrainData,
    model: ModelOptions = _MODEL,
    optim: OptimOptions = _OPTIM,
    trainer: TrainerOptions = _TRAINER,
    output: str = "runs/pretrain",
    resume: bool = False,
    seed: int = 0,
) -> dict:
    """Pretrain a HyenaDNA model to predict each base from the bases before it.

    Args:
        data: genomes and windows.
        model: the starting model (a preset trains from scratch).
        optim: AdamW and the warmup + cosine schedule.
        trainer: steps, devices, strategy, precision, validation and checkpoint intervals.
        output: run folder: checkpoints/, logs/ (CSV and TensorBoard), model/ (the final model), summary.json.
        resume: continue from output/checkpoints/last.ckpt.
        seed: seed for initialisation and for the windows.
    """
    from hyenadna.pipelines.pretrain import run_pretrain

    return run_pretrain(data, model, optim, trainer, output, resume, seed)


def finetune(
    data: LabelledData,
    model: ModelOptions = _MODEL,
    head: HeadOptions = HeadOptions(),  # noqa: B008 (a frozen-in default shown by --print_config)
    tuning: FinetuneOptions = FinetuneOptions(),  # noqa: B008
    optim: OptimOptions = _FT_OPTIM,
    trainer: TrainerOptions = _TRAINER,
    output: str = "runs/finetune",
    resume: bool = False,
    seed: int = 0,
) -> dict:
    """Fine-tune a model on labelled sequences; test metrics go to output/metrics.json.

    Args:
        data: labelled files and how to read and batch them.
        model: the backbone: a model folder (ours or a released HyenaDNA checkpoint) or a preset.
        head: pooling, layer and reverse-complement conjoining of the task head.
        tuning: frozen or full fine-tuning, early stopping, the k-mer baseline.
        optim: AdamW and schedule (the head's learning rate; the backbone's is scaled).
        trainer: steps, devices, precision, validation interval.
        output: run folder: checkpoints/, logs/, model/ (self-contained fine-tuned model), metrics.json.
        resume: continue from output/checkpoints/last.ckpt.
        seed: seed for initialisation, the validation split and shuffling.
    """
    from hyenadna.pipelines.finetune import run_finetune

    result = run_finetune(data, model, head, tuning, optim, trainer, output, resume, seed)
    if "test" in result:
        print(metrics_table(result["test"], result.get("kmer_baseline")))
    return result


def metrics_table(model: dict[str, float], baseline: dict[str, float] | None) -> str:
    """Test metrics of the fine-tuned model beside the k-mer baseline, as a plain-text table."""
    lines = [f"{'test metric':<16} {'fine-tuned':>11} {'k-mer LR':>10}"]
    for name, value in model.items():
        other = f"{baseline[name]:>10.4f}" if baseline and name in baseline else f"{'':>10}"
        lines.append(f"{name:<16} {value:>11.4f} {other}")
    return "\n".join(lines)


def predict(
    model: str,
    input: str,
    output: str,
    format: str = "auto",
    reader: dict | None = None,
    batch_size: int = 32,
    device: str = "cpu",
) -> dict:
    """Write per-sequence class probabilities (or regression values) of a fine-tuned model to a TSV.

    Args:
        model: a fine-tuned model folder (output/model of ``hyenadna finetune``).
        input: sequences: a FASTA (labelled or not), or any labelled format fine-tuning reads.
        output: the TSV to write (it appears only when complete).
        format: auto, table, fasta, bed or genomic_benchmarks.
        reader: options of the labelled reader (sequence_col, label_cols, genome...).
        batch_size: sequences per forward pass.
        device: cpu or cuda.
    """
    from hyenadna.pipelines.finetune import run_predict

    return {"rows": run_predict(model, input, output, format, reader, batch_size, device), "output": output}


def embed(
    model: str,
    output: str,
    input: EmbedInput,
    pooling: str = "mean",
    layer: int = -1,
    rc_average: bool = False,
    per_token: bool = False,
    dtype: str = "float32",
    batch_size: int = 16,
    chunk: int = 256,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Embed sequences to HDF5 (pooled per sequence, optionally per base).

    Args:
        model: a preset, a model folder (ours, fine-tuned or released).
        output: the .h5 file; written as OUTPUT.partial and renamed when complete.
        input: a FASTA, a BED with its genome, or a BAM/CRAM.
        pooling: mean, last, first or max over each sequence's bases.
        layer: hidden state to use (-1: the final one; 0: the token embedding).
        rc_average: average in the reverse complement.
        per_token: also store every base's embedding (chunked, gzip-compressed).
        dtype: float32 or float16 storage.
        batch_size: sequences per forward pass (grouped by length).
        chunk: records per write; a stopped run resumes after its last whole chunk.
        resume: continue OUTPUT.partial left by a stopped run.
        overwrite: replace an existing OUTPUT.
        device: cpu or cuda.
        seed: seed for a preset's random weights.
        progress: show a progress bar.
    """
    from hyenadna.pipelines.embed import run_embed

    start = time.perf_counter()
    n = run_embed(
        model, output, input, pooling, layer, rc_average, per_token, dtype, batch_size, chunk, resume, overwrite,
        device, seed, progress,
    )  # fmt: skip
    return {"records": n, "output": output, "seconds": round(time.perf_counter() - start, 2)}


def score(
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
    device: str = "cpu",
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
        vcf_output: also write the VCF with INFO/HYENADNA_LLR (.vcf, .vcf.gz or .bcf).
        resume: continue OUTPUT.partial left by a stopped run.
        overwrite: replace an existing OUTPUT.
        device: cpu or cuda.
        seed: seed for a preset's random weights.
        progress: show a progress bar.
    """
    import torch

    from hyenadna import load
    from hyenadna.pipelines.score import run_score_fasta, run_score_vcf

    if bool(vcf) == bool(fasta):
        raise HyenaDNAError("give either --vcf (with --genome) or --fasta")
    torch.manual_seed(seed)
    net = load(model).to(device).eval()
    if fasta:
        return run_score_fasta(net, fasta, output, rc_average, batch_size, overwrite)
    if not genome:
        raise HyenaDNAError("--vcf needs the --genome FASTA its coordinates refer to")
    return run_score_vcf(
        net, vcf, genome, output, window, rc_average, max_allele, batch_size, chunk, vcf_output, resume, overwrite,
        progress,
    )  # fmt: skip


def loss(fasta: str, model: str = "tiny-1k", window: int | None = None, batch_size: int = 8, seed: int = 0) -> None:
    """Print the next-base loss (nats and bits per base) of a model on each record of a FASTA file.

    Args:
        fasta: FASTA file (plain or gzip).
        model: a preset (random weights) or a model folder.
        window: bases per window (default: the model's l_max).
        batch_size: windows per forward pass.
        seed: seed for a preset's random weights.
    """
    import torch

    from hyenadna import load
    from hyenadna.pipelines.lm_loss import fasta_lm_loss

    torch.manual_seed(seed)
    net = load(model).eval()
    window = window or net.config.l_max
    start = time.perf_counter()
    results = fasta_lm_loss(net, fasta, window=window, batch_size=batch_size)
    seconds = time.perf_counter() - start
    print(f"model {model} ({net.num_parameters():,} parameters), window {window}")
    print(f"{'record':<32} {'bases':>10} {'scored':>10} {'nats/base':>10} {'bits/base':>10}")
    for r in results:
        print(f"{r.name[:32]:<32} {r.bases:>10,} {r.scored:>10,} {r.nats_per_base:>10.4f} {r.bits_per_base:>10.4f}")
    bases = sum(r.bases for r in results)
    print(f"{bases:,} bases in {seconds:.1f} s ({bases / seconds:,.0f} bases/s)")


def info(model: str = "tiny-1k") -> dict:
    """Print a model's configuration and parameter count, and the runtime it would run under.

    Args:
        model: a preset or a model folder.
    """
    import torch

    from hyenadna import load
    from hyenadna.ops.triton import triton_available
    from hyenadna.runtime import jemalloc_loaded

    net = load(model)
    runtime = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "allocator": "jemalloc" if jemalloc_loaded() else "system",
        "cuda": torch.cuda.is_available(),
        "triton": triton_available(),
    }
    return {**net.config.to_dict(), "parameters": net.num_parameters(), "runtime": runtime}


COMMANDS: dict[str, Callable] = {
    "pretrain": pretrain,
    "finetune": finetune,
    "predict": predict,
    "embed": embed,
    "score": score,
    "loss": loss,
    "info": info,
}


def build_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(
        prog="hyenadna",
        description="Long-context DNA language models (HyenaDNA).",
        epilog="Runs on jemalloc when installed (faster on CPUs); HYENADNA_ALLOCATOR=system keeps the system "
        "allocator. `hyenadna info` shows the runtime.",
    )
    subcommands = parser.add_subcommands(dest="command")
    for name, fn in COMMANDS.items():
        sub = ArgumentParser(description=(fn.__doc__ or "").split("\n")[0])
        sub.add_argument("--config", action=ActionConfigFile, help="a YAML file with any of the options below")
        sub.add_function_arguments(fn, fail_untyped=True, as_positional=False)
        subcommands.add_subcommand(name, sub, help=(fn.__doc__ or "").split("\n")[0])
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """The ``hyenadna`` command. Run as a program (``argv`` None), it first re-executes itself
    with jemalloc as the allocator when installed (see :mod:`hyenadna.runtime`)."""
    # Lightning's own deprecation noise about torch internals says nothing to our users.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    try:
        if argv is None:  # before any work: the process is replaced
            reexec_with_jemalloc()
        parser = build_parser()
        cfg = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        command = cfg.command
        init = parser.instantiate(cfg)[command]
        kwargs = {k: v for k, v in dict(init).items() if k not in ("config", "__path__")}
        result = COMMANDS[command](**kwargs)
    except HyenaDNAError as exc:
        print(f"hyenadna: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
