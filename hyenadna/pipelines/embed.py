"""Embedding export to HDF5: ``run_embed`` streams sequences from FASTA, BED + genome or BAM reads.

The file is written as ``OUTPUT.partial`` and renamed to ``OUTPUT`` only when every record is in,
so a stopped run never leaves a file that looks complete. Records go out in input order, in
chunks; after each chunk the datasets are flushed and the ``records_done`` attribute is raised, so
``resume=True`` continues a stopped run after its last whole chunk (the settings must match).
With ``--trainer.devices N`` (or several nodes) the ranks share the chunks and rank 0 merges
them into the same file (:mod:`hyenadna.inference.sharding`).

Layout (N records, D = d_model):

* ``embeddings`` (N, D) float32 or float16, pooled per record;
* ``names``, ``contig`` (UTF-8 strings), ``start``, ``end`` (int64, 0-based half-open; for FASTA
  records contig is the name and the span the whole record), ``strand`` (``+``, ``-``, ``.``);
* with ``per_token``: ``token_embeddings`` (sum of lengths, D), chunked and gzip-compressed, and
  ``token_offsets`` (N + 1): record i is ``token_embeddings[token_offsets[i]:token_offsets[i+1]]``;
* attributes: ``model``, ``config`` (JSON), ``layer``, ``pooling``, ``rc_average``, ``dtype``,
  ``input`` (JSON), ``records_done``, ``complete``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hyenadna.data.embed_input import EmbedInput, EmbedRecord, check_input, iter_records
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.sharding import ONE_PROCESS, Processes, Rank, chunked, launch, run_chunks
from hyenadna.inference.tiling import Tiling
from hyenadna.io.atomic import files_fingerprint, partial_output, removed_unless_written, run_lock, sigterm_as_interrupt
from hyenadna.io.embedding_file import append_part, append_rows, open_hdf5, start_file, start_or_resume


def run_embed(
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
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    tiling: Tiling | None = None,
    trainer: Processes = ONE_PROCESS,
) -> dict | None:
    """Embed sequences to HDF5 (pooled per sequence, optionally per base).

    Memory stays bounded by one chunk of records whatever the input size. Returns the record
    count, the output path and the seconds taken.

    Args:
        model: a preset, a model folder (ours, fine-tuned or released).
        output: the .h5 file; written as OUTPUT.partial and renamed when complete.
        input: a FASTA, a BED with its genome, or a BAM/CRAM.
        pooling: mean, last, first, max or center (the middle base) over each sequence's bases.
        layer: hidden state to use (-1: the final one; 0: the token embedding).
        rc_average: average in the reverse complement.
        per_token: also store every base's embedding (chunked, gzip-compressed).
        dtype: float32 or float16 storage.
        batch_size: sequences per forward pass (grouped by length).
        chunk: records per write; a stopped run resumes after its last whole chunk.
        resume: continue OUTPUT.partial left by a stopped run.
        overwrite: replace an existing OUTPUT.
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        seed: seed for a preset's random weights.
        progress: show a progress bar.
        tiling: records longer than the model are embedded in windows (--tiling.window,
            --tiling.stride), their per-base states stitched, each base from the first window
            that holds it, then pooled (see hyenadna.inference.tiling). Off by default: it changes numbers.
        trainer: run on several processes, devices or nodes (--trainer.devices,
            --trainer.num_nodes, --trainer.accelerator): each rank embeds its share of the
            chunks and rank 0 merges them into OUTPUT (see hyenadna.inference.sharding); the
            other ranks return None.
    """
    start = time.perf_counter()
    _check_options(input, pooling, dtype, chunk, batch_size, seed)
    _plan_files(model, input, output)
    rank = _start_processes(output, trainer, resume, device)
    if rank is None:
        out, partial = partial_output(output, resume, overwrite)
    backbone = _load_backbone(model, rank, device, seed, pooling, layer, tiling)
    settings = _file_settings(model, input, backbone, pooling, layer, rc_average, per_token, dtype, tiling)
    options = EmbedOptions(pooling, layer, rc_average, per_token, batch_size, tiling)
    if rank is not None:
        return _run_embed_sharded(rank, output, input, backbone, settings, options, chunk, resume, overwrite, progress)
    done = _embed_to_partial(out, partial, input, backbone, settings, options, chunk, resume, progress)
    os.replace(partial, out)
    return {"records": done, "output": output, "seconds": round(time.perf_counter() - start, 2)}


class EmbedOptions(NamedTuple):
    """What each chunk is computed with (the settings that do not name a file)."""

    pooling: str
    layer: int
    rc_average: bool
    per_token: bool
    batch_size: int
    tiling: Tiling | None


def _check_options(input: EmbedInput, pooling: str, dtype: str, chunk: int, batch_size: int, seed: int) -> None:
    """The options that need no file or model, refused before anything is made."""
    from hyenadna.checks.values import integer, positive

    if dtype not in ("float32", "float16"):
        raise HyenaDNAError(f"dtype must be float32 or float16, got {dtype!r}")
    positive("--chunk", chunk)
    positive("--batch_size", batch_size)
    integer("--seed", seed, 0, 2**63 - 1)
    if pooling == "none":
        raise HyenaDNAError("pooling 'none' is not stored; use per_token=True with a pooling for the pooled rows")
    check_input(input)


def _plan_files(model: str, input: EmbedInput, output: str) -> None:
    """No output (the file, its ``.partial``, ``.parts/`` and ``.lock``) may be an input or a model file."""
    from hyenadna.io.file_plan import FilePlan

    plan = FilePlan("embed")
    for option in ("fasta", "bed", "genome", "bam", "reference"):
        plan.input(f"--input.{option}", getattr(input, option))
    plan.model("--model", model)
    plan.output("--output", output, companions=(".partial", ".parts", ".lock"))
    plan.check()


def _start_processes(output: str, trainer: Processes, resume: bool, device: str) -> Rank | None:
    """This process's rank when the run goes through a chunk folder (several processes, or the
    folder such a run left); None when it writes ``OUTPUT.partial`` alone."""
    from hyenadna.inference.sharding import alone, continues_chunks
    from hyenadna.training.trainer import resolve_device

    in_chunks = continues_chunks(output, trainer.distributed, resume)
    rank = launch(trainer)
    if rank is None and in_chunks:  # a chunk folder left by several processes: continued through its chunks
        rank = alone(resolve_device(device))
    return rank


def _load_backbone(model: str, rank: Rank | None, device: str, seed: int, pooling: str, layer: int,
                   tiling: Tiling | None):  # fmt: skip
    """The model (a preset's random weights from ``seed``), with the options that depend on it checked."""
    import torch

    from hyenadna.inference.embedding import check_embed_options
    from hyenadna.model import load
    from hyenadna.training.trainer import resolve_device

    torch.manual_seed(seed)
    backbone = load(model, device=rank.device if rank else resolve_device(device))
    check_embed_options(backbone, pooling, layer)
    if tiling is not None and tiling.enabled:
        tiling.check(backbone.config.l_max)
    return backbone


def _file_settings(model: str, input: EmbedInput, backbone, pooling: str, layer: int, rc_average: bool,
                   per_token: bool, dtype: str, tiling: Tiling | None) -> dict:  # fmt: skip
    """The file's attributes that a resumed run must match (module docstring)."""
    return {
        "tiling": json.dumps(asdict(tiling) if tiling is not None and tiling.enabled else None),
        "model": str(model),
        "config": json.dumps(backbone.config.to_dict(), sort_keys=True),
        "layer": layer,
        "pooling": pooling,
        "rc_average": rc_average,
        "dtype": dtype,
        "per_token": per_token,
        "input": json.dumps(asdict(input), sort_keys=True),
        "files": json.dumps(
            files_fingerprint(model, [input.fasta, input.bed, input.genome, input.bam, input.reference])
        ),
    }


def _embed_to_partial(out: Path, partial: Path, input: EmbedInput, backbone, settings: dict, options: EmbedOptions,
                      chunk: int, resume: bool, progress: bool) -> int:  # fmt: skip
    """Embed the records into ``OUTPUT.partial`` (a stopped run's continued after its last whole
    chunk), marked complete at the end; returns the records in it."""
    from hyenadna.data.tokenizer import CharacterTokenizer

    tokenizer = CharacterTokenizer()
    done = 0
    fresh = not (resume and partial.exists())
    with (
        run_lock(out),
        removed_unless_written(partial, fresh, lambda: done),
        sigterm_as_interrupt(),
        open_hdf5(partial, "w" if fresh else "a") as h5,
    ):
        done = start_or_resume(h5, partial, fresh, settings, backbone.config.d_model, chunk)
        records = iter_records(input)
        bar = _progress(progress, done)
        for _ in islice(records, done):  # skip what the stopped run wrote
            pass
        for records_chunk in chunked(records, chunk):
            done = _write_chunk(h5, backbone, tokenizer, records_chunk, options, done)
            bar.update(len(records_chunk))
        bar.close()
        if done == 0:
            raise HyenaDNAError("no records to embed in the input")
        h5.attrs["complete"] = True
    return done


def _run_embed_sharded(rank, output, input, backbone, settings, options, chunk, resume, overwrite, progress):
    """``run_embed`` on one rank of several: its chunks to ``OUTPUT.parts/``, merged by rank 0."""
    from hyenadna.data.tokenizer import CharacterTokenizer

    start = time.perf_counter()
    d_model = backbone.config.d_model
    tokenizer = CharacterTokenizer()

    def new_file(path: str):
        h5 = open_hdf5(path, "w")
        start_file(h5, settings, d_model, chunk)
        return h5

    def chunk_writer(records: list[EmbedRecord]):
        def write(path: str) -> None:
            with new_file(path) as h5:
                _write_chunk(h5, backbone, tokenizer, records, options, 0)

        return write

    total = 0

    def merge(paths: list, path: str) -> None:
        nonlocal total
        with new_file(path) as h5:
            for part_path in paths:
                with open_hdf5(part_path, "r") as part:
                    append_part(h5, part)
            total = h5["embeddings"].shape[0]
            h5.attrs["records_done"] = total
            h5.attrs["complete"] = True

    chunks, bar = chunked(iter_records(input), chunk), _progress(progress and rank.leader, 0)
    if not run_chunks(
        output, rank, {**settings, "chunk": chunk}, ".h5", resume, overwrite, chunks, chunk_writer, merge, bar
    ):
        return None
    seconds = round(time.perf_counter() - start, 2)
    return {"records": total, "output": output, "seconds": seconds, "processes": rank.world_size}


def _write_chunk(h5, backbone, tokenizer, records: list[EmbedRecord], options: EmbedOptions, done: int) -> int:
    from hyenadna.inference.batching import encode_sequences, run_batched
    from hyenadna.inference.embedding import embed_batch

    pooling, layer, rc_average, per_token, batch_size, tiling = options
    names = [f"record {r.name!r}" for r in records]
    l_max = backbone.config.l_max
    if tiling is not None and tiling.enabled and any(len(r.sequence) > l_max for r in records):
        pooled, tokens = _tiled_chunk(backbone, [r.sequence for r in records], options, tokenizer)
    else:
        rows = encode_sequences([r.sequence for r in records], l_max, names, tokenizer=tokenizer)
        pairs = run_batched(
            rows, batch_size, lambda batch: embed_batch(backbone, batch, pooling, layer, rc_average, per_token)
        )
        pooled = [vector for vector, _ in pairs]
        tokens = [states for _, states in pairs]
    dtype = h5["embeddings"].dtype
    try:
        append_rows(h5, "embeddings", np.stack(pooled).astype(dtype))
        append_rows(h5, "names", [r.name for r in records])
        append_rows(h5, "contig", [r.contig for r in records])
        append_rows(h5, "strand", [r.strand for r in records])
        append_rows(h5, "start", np.asarray([r.start for r in records], dtype=np.int64))
        append_rows(h5, "end", np.asarray([r.end for r in records], dtype=np.int64))
        if per_token:
            offsets = int(h5["token_offsets"][-1]) + np.cumsum([len(t) for t in tokens])
            append_rows(h5, "token_embeddings", np.concatenate(tokens).astype(dtype))
            append_rows(h5, "token_offsets", offsets.astype(np.int64))
        h5.flush()  # the records first, then the count that vouches for them
        h5.attrs["records_done"] = done + len(records)
        h5.flush()
    except OSError as exc:  # a full disk, a lost mount: the records counted so far stay trustworthy
        raise HyenaDNAError(
            f"cannot write {h5.filename} ({exc}); it keeps the {done:,} records written before: free space and "
            "run the same command with --resume"
        ) from None
    return done + len(records)


def _tiled_chunk(backbone, seqs: list[str], options: EmbedOptions, tokenizer) -> tuple[list, list]:
    """Pooled vectors and (with per_token) per-base states of a chunk holding records longer than
    the model: the stitched per-base states of :func:`hyenadna.inference.embedding.embed_sequences`."""
    from hyenadna.inference.embedding import embed_sequences, pool_states

    pooling, layer, rc_average, per_token, batch_size, tiling = options
    states = embed_sequences(backbone, seqs, "none", layer, batch_size, rc_average, tokenizer, tiling)
    if rc_average:  # pooled vectors average the strands' pooled vectors, as the untiled path does
        pooled = list(embed_sequences(backbone, seqs, pooling, layer, batch_size, True, tokenizer, tiling))
    else:
        pooled = [pool_states(s, pooling) for s in states]
    return pooled, (states if per_token else [None] * len(seqs))


def _progress(enabled: bool, initial: int):
    from tqdm import tqdm

    return tqdm(initial=initial, unit=" seq", desc="embed", disable=not enabled, mininterval=1.0)
