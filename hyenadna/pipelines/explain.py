"""``hyenadna explain``: attributions to HDF5 (layout: :mod:`hyenadna.analysis.attribution_file`),
ISM to TSV, logos.

The records are explained in chunks of ``--chunk``, each chunk's arrays written to
``OUTPUT.parts/`` (``.npz``, read back without pickle) as it is done, and the file is built from
them, under a temporary name renamed when complete: a stopped run continues with ``--resume``,
and ``--trainer.devices`` / ``--trainer.num_nodes`` share the chunks between processes
(:mod:`hyenadna.inference.sharding`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hyenadna.analysis.attribution_file import read_chunks, write_attributions, write_chunk
from hyenadna.data.labels import sequence_input_files
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.sharding import ONE_PROCESS, Processes, Rank, alone, launch
from hyenadna.io.atomic import files_fingerprint
from hyenadna.io.file_plan import FilePlan, sequence_command_plan

DEFAULT_METHODS = ("grad_x_input", "ism")
FORMATS = ("auto", "table", "fasta", "bed", "genomic_benchmarks")


def load_explained_model(model: str, device: str):
    """A fine-tuned model folder (with ``task.json``) or a language model by name, preset or folder."""
    from hyenadna.heads.config import TASK_FILE
    from hyenadna.heads.loading import load_task_model
    from hyenadna.model import load

    if (Path(model) / TASK_FILE).is_file():
        return load_task_model(model, map_location=device).eval()
    return load(model, device=device)


def compute_attributions(net, seqs: list[str], methods: list[str], output: str, steps: int, baseline: str,
                         batch_size: int, progress: bool) -> dict[str, list[np.ndarray]]:  # fmt: skip
    """Each method's per-sequence (L, 4, C) arrays."""
    from hyenadna.analysis import attribution

    unknown = sorted(set(methods) - set(attribution.METHODS))
    if unknown or not methods:
        raise HyenaDNAError(f"methods must be some of {attribution.METHODS}, got {methods}")
    results = {}
    for method in methods:
        if method == "ism":
            results[method] = attribution.ism(net, seqs, output, batch_size=max(batch_size, 32), progress=progress)
        elif method == "grad_x_input":
            results[method] = attribution.gradient_x_input(net, seqs, output, batch_size)
        else:
            results[method] = attribution.integrated_gradients(net, seqs, output, steps, baseline, batch_size)
    return results


def ism_table(names, seqs, deltas: list[np.ndarray], outputs: list[str]) -> str:
    """Long-format ISM: one line per position and alternative base (1-based positions)."""
    lines = ["\t".join(["name", "position", "ref", "alt", *[f"delta_{o}" for o in outputs]])]
    for name, seq, array in zip(names, seqs, deltas):
        for pos, base in enumerate(seq.upper()):
            for b, alt in enumerate("ACGT"):
                if alt != base:
                    values = "\t".join(f"{v:.6g}" for v in array[pos, b])
                    lines.append(f"{name}\t{pos + 1}\t{base}\t{alt}\t{values}")
    return "\n".join(lines) + "\n"


def run_explain(
    model: str,
    input: str | dict[str, str],
    output: str,
    methods: list[str] | None = None,
    format: str = "auto",
    reader: dict[str, Any] | None = None,
    split: str | None = None,
    max_records: int | None = None,
    target_output: str = "logit",
    steps: int = 32,
    baseline: str = "uniform",
    ism_tsv: str | None = None,
    plots: str | None = None,
    plot_records: int = 10,
    target: str | None = None,
    batch_size: int = 16,
    chunk: int = 64,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    trainer: Processes = ONE_PROCESS,
) -> dict | None:
    """Attribute a model's outputs to the bases of each sequence (ISM, gradient x input, integrated gradients).

    Every option and path is checked before the model is loaded or a file is made; each sequence
    is checked against the model's length (explain does not tile) before the first chunk.

    Args:
        model: a fine-tuned model folder (Hyena head or CNN), or a language model (its sequence
            log-likelihood is explained).
        input: sequences: a FASTA (labelled or not), or any labelled format fine-tuning reads.
        output: the HDF5 file of attributions (layout: hyenadna.analysis.attribution_file); its folder
            must exist, and it may not be an input or another output.
        methods: some of ism, grad_x_input, integrated_gradients, each once (default, or when
            left out: grad_x_input and ism; an empty list is refused).
        format: auto, table, fasta, bed or genomic_benchmarks.
        reader: options of the labelled reader (sequence_col, label_cols, split_col, name_col...).
        split: keep the records of one split (train, val, test) of a file with a split column.
        max_records: explain the first N records only (N >= 1; default: all).
        target_output: attribute logits (default) or probabilities of a classifier.
        steps: integrated gradients' intervals along the path (>= 1).
        baseline: integrated gradients' start: uniform (0.25 per base) or zero.
        ism_tsv: also write ISM as a long table (name, position, ref, alt, delta per output);
            its folder must exist.
        plots: a folder for pictures (needs hyenadna[plot]): attribution logos and ISM heatmaps,
            named after the records (made safe as file names); its parent folder must exist.
        plot_records: how many records get pictures (>= 0).
        target: the output whose attributions are drawn, against the mean of the others (default: the last).
        batch_size: sequences per gradient batch (>= 1; ISM batches mutants, at least 32).
        chunk: records per part file (>= 1); a stopped run resumes after its last whole chunk.
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        resume: continue the parts (OUTPUT.parts/) a stopped run left.
        overwrite: replace an existing output.
        progress: show progress.
        trainer: run on several processes, devices or nodes (--trainer.devices,
            --trainer.num_nodes, --trainer.accelerator): the ranks share the chunks and rank 0
            writes the outputs (see hyenadna.inference.sharding); the other ranks return None.

    Returns:
        On rank 0, a summary; with ISM, ``ism_mutants`` and ``mutants_per_s`` count only the
        mutants computed in this session (not those of the chunks a stopped run left).
    """
    from hyenadna.analysis.attribution import check_sequences
    from hyenadna.training.trainer import resolve_device

    methods = check_explain_options(methods, format, target_output, steps, baseline, max_records, plot_records,
                                    batch_size, chunk, ism_tsv, plots)  # fmt: skip
    explain_plan(model, input, reader, output, ism_tsv, plots)
    _refuse_existing(overwrite, output=output, ism_tsv=ism_tsv)
    rank = launch(trainer) or alone(resolve_device(device))
    net = load_explained_model(model, rank.device)
    records = _read_records(input, format, reader, split, max_records)
    outputs = _checked_outputs(net, target_output, target)
    mutant_counts = check_sequences(net, records.seqs, records.names)  # before the chunk folder: no tiling here
    attrs = {"model": model, "methods": json.dumps(methods), "output": target_output, "steps": steps,
             "baseline": baseline}  # fmt: skip
    settings = {**attrs, "files": files_fingerprint(model, sequence_input_files(input)), "format": format,
                "split": split, "reader": json.dumps(reader or {}, sort_keys=True), "max_records": max_records,
                "chunk": chunk}  # fmt: skip
    job = ExplainJob(net, records, outputs, AttributionOptions(methods, target_output, steps, baseline, batch_size),
                     attrs, mutant_counts, chunk)  # fmt: skip
    start = time.perf_counter()
    run = _attribute_in_chunks(job, output, rank, settings, resume, overwrite, progress)
    if run is None:
        return None
    results, mutants = run
    seconds = time.perf_counter() - start
    summary: dict[str, Any] = {"records": len(records.seqs), "bases": sum(map(len, records.seqs)),
                               "methods": methods, "outputs": outputs, "seconds": round(seconds, 2),
                               "output": output}  # fmt: skip
    if "ism" in results:
        summary["ism_mutants"] = mutants
        if mutants:
            summary["mutants_per_s"] = round(mutants / max(seconds, 1e-9), 1)
    return {**summary, **_write_extras(records, results, outputs, ism_tsv, plots, target, plot_records)}


class SequenceRecords(NamedTuple):
    """The records to explain: names, sequences and their labels (None for a plain FASTA)."""

    names: list[str]
    seqs: list[str]
    labels: list[tuple[str, ...]] | None


class AttributionOptions(NamedTuple):
    """How each chunk's attributions are computed."""

    methods: list[str]
    target_output: str
    steps: int
    baseline: str
    batch_size: int


@dataclass
class ExplainJob:
    """What a run attributes and how: the model, its records and output names, the options, the
    attributes the file records, each record's ISM mutants, and the records per chunk."""

    net: Any
    records: SequenceRecords
    outputs: list[str]
    options: AttributionOptions
    attrs: dict
    mutant_counts: list[int]
    chunk: int


def _refuse_existing(overwrite: bool, **outputs: str | None) -> None:
    """An existing output file needs ``--overwrite`` (checked before the model loads)."""
    for option, path in outputs.items():
        if path and Path(path).exists() and not overwrite:
            raise HyenaDNAError(f"{path} exists; pass --overwrite to replace it (--{option})")


def _read_records(input: str | dict[str, str], format: str, reader: dict[str, Any] | None, split: str | None,
                  max_records: int | None) -> SequenceRecords:  # fmt: skip
    """The input's records (the first ``max_records``); none at all is refused."""
    from hyenadna.data.labels import read_sequence_input

    names, seqs, labels = read_sequence_input(input, format, reader or {}, split)
    if max_records is not None:
        names, seqs = names[:max_records], seqs[:max_records]
        labels = labels[:max_records] if labels is not None else None
    if not seqs:
        raise HyenaDNAError(f"{input}: no records to explain")
    return SequenceRecords(names, seqs, labels)


def _checked_outputs(net, target_output: str, target: str | None) -> list[str]:
    """The model's output names; ``target`` among them is refused now, not after the HDF5 is written."""
    from hyenadna.analysis.attribution import Explained, target_index

    outputs = Explained(net, target_output).names
    if target is not None:
        target_index(outputs, target)
    return outputs


def _attribute_in_chunks(job: ExplainJob, output: str, rank: Rank, settings: dict, resume: bool, overwrite: bool,
                         progress: bool) -> tuple[dict[str, list[np.ndarray]], int] | None:  # fmt: skip
    """Attribute the records chunk by chunk into ``OUTPUT.parts/``; rank 0 builds ``output`` from
    them and gets each method's arrays and the ISM mutants computed in this session (not those of
    the chunks a stopped run left); the other ranks get None."""
    from tqdm import tqdm

    from hyenadna.inference.sharding import chunked, run_chunks

    parts = Path(output).with_name(Path(output).name + ".parts")
    left_before = {p.name for p in parts.glob("chunk*")} if rank.leader and parts.is_dir() else set()
    results: dict[str, list[np.ndarray]] = {}
    computed = {"mutants": 0}

    records, options, chunk = job.records, job.options, job.chunk

    def merge(paths: list[Path], path: str) -> None:
        fresh = [k for k, p in enumerate(paths) if p.name not in left_before]  # computed in this session
        computed["mutants"] = sum(sum(job.mutant_counts[k * chunk : (k + 1) * chunk]) for k in fresh)
        results.update(read_chunks(paths, options.methods))
        write_attributions(path, records.names, records.seqs, records.labels, job.outputs, results, job.attrs)

    def writer(rows: list[int]):
        arrays = compute_attributions(job.net, [records.seqs[i] for i in rows], options.methods, options.target_output,
                                      options.steps, options.baseline, options.batch_size, False)  # fmt: skip
        return lambda tmp: write_chunk(tmp, arrays)

    bar = tqdm(unit=" seq", desc="explain", disable=not (progress and rank.leader), mininterval=1.0)
    rows = chunked(range(len(records.seqs)), chunk)
    if not run_chunks(output, rank, settings, ".npz", resume, overwrite, rows, writer, merge, bar):
        return None
    return results, computed["mutants"]


def _write_extras(records: SequenceRecords, results: dict[str, list[np.ndarray]], outputs: list[str],
                  ism_tsv: str | None, plots: str | None, target: str | None,
                  plot_records: int) -> dict[str, Any]:  # fmt: skip
    """The ISM table and the pictures asked for; their entries of the summary."""
    from hyenadna.analysis.plotting import attribution_pictures
    from hyenadna.io.atomic import atomic_write_text

    written: dict[str, Any] = {}
    if ism_tsv:
        atomic_write_text(ism_tsv, ism_table(records.names, records.seqs, results["ism"], outputs))
        written["ism_tsv"] = ism_tsv
    if plots:
        written["plots"] = attribution_pictures(Path(plots), records.names, records.seqs, results, outputs, target,
                                                plot_records)  # fmt: skip
    return written


def check_explain_options(methods: list[str] | str | None, format: str, target_output: str, steps: int, baseline: str,
                          max_records: int | None, plot_records: int, batch_size: int, chunk: int,
                          ism_tsv: str | None, plots: str | None) -> list[str]:  # fmt: skip
    """Every option of ``explain`` that needs no file, checked before anything is made; returns
    the methods to run (the defaults for None; an empty list or a repeated method is refused)."""
    from hyenadna.analysis.attribution import BASELINES, METHODS, OUTPUTS
    from hyenadna.checks import values as validate

    chosen = list(DEFAULT_METHODS) if methods is None else [methods] if isinstance(methods, str) else list(methods)
    if not chosen:
        raise HyenaDNAError(f"--methods is empty: name some of {METHODS}, or leave it out for {DEFAULT_METHODS}")
    if any(m not in METHODS for m in chosen):
        raise HyenaDNAError(f"methods must be some of {METHODS}, got {chosen}")
    repeated = sorted({m for m in chosen if chosen.count(m) > 1})
    if repeated:
        raise HyenaDNAError(f"--methods names {', '.join(repeated)} more than once: give each method once")
    for option, value, allowed in (("--format", format, FORMATS), ("--target_output", target_output, OUTPUTS),
                                   ("--baseline", baseline, BASELINES)):  # fmt: skip
        if value not in allowed:
            raise HyenaDNAError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    for option, value in (("--steps", steps), ("--batch_size", batch_size), ("--chunk", chunk)):
        validate.integer(option, value)
        if value < 1:  # the words every chunked command uses
            raise HyenaDNAError(f"{option.lstrip('-')} must be positive, got {value}")
    if max_records is not None:
        validate.integer("--max_records", max_records, low=1)
    validate.integer("--plot_records", plot_records, low=0)
    if ism_tsv and "ism" not in chosen:
        raise HyenaDNAError("--ism_tsv needs ism among --methods")
    if plots:
        from hyenadna.analysis.plotting import plotting_available

        if not plotting_available():
            raise HyenaDNAError("--plots needs matplotlib and logomaker: pip install 'hyenadna[plot]'")
    return chosen


def explain_plan(model: str, input: str | dict[str, str], reader: dict | None, output: str, ism_tsv: str | None,
                 plots: str | None) -> FilePlan:  # fmt: skip
    """The files ``explain`` reads and writes, checked (:class:`hyenadna.io.file_plan.FilePlan`):
    no output may be an input (a file of the model folder, the sequences, a BED reader's genome)
    or another output (``OUTPUT``, its ``.parts/`` and ``.lock``, the ISM table, the plots folder)."""
    plan = sequence_command_plan("explain", model, input, reader, output)
    plan.output("--ism_tsv", ism_tsv)
    plan.output("--plots", plots, folder=True)
    return plan.check()
