"""``hyenadna predict``: per-sequence probabilities or values of a fine-tuned model, to a TSV.

Sequences are predicted in chunks, each chunk's rows written to its own file in
``OUTPUT.parts/`` and the parts joined into ``OUTPUT`` in input order when all are in
(:mod:`hyenadna.inference.sharding`): a stopped run continues with ``--resume``, and
``--trainer.devices`` / ``--trainer.num_nodes`` share the chunks between processes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hyenadna.data.labels import read_sequence_input, sequence_input_files
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.inference.sharding import ONE_PROCESS, Processes, alone, chunked, join_text, launch, run_chunks
from hyenadna.inference.tiling import Tiling, too_long_hint
from hyenadna.io.atomic import files_fingerprint
from hyenadna.io.file_plan import sequence_command_plan
from hyenadna.io.prediction_table import prediction_table
from hyenadna.training.trainer import resolve_device


def run_predict(
    model: str,
    input: str | dict[str, str],
    output: str,
    format: str = "auto",
    reader: dict[str, Any] | None = None,
    batch_size: int = 32,
    chunk: int = 1024,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    tiling: Tiling | None = None,
    trainer: Processes = ONE_PROCESS,
) -> dict | None:
    """Write per-sequence class probabilities (or regression values) of a fine-tuned model to a TSV.

    The input may be labelled (the true label is then a column) or a plain FASTA; the TSV
    appears only when complete.

    Args:
        model: a fine-tuned model folder (output/model of ``hyenadna finetune``; Hyena or CNN).
        input: sequences: a FASTA (labelled or not), or any labelled format fine-tuning reads.
        output: the TSV to write (it appears only when complete).
        format: auto, table, fasta, bed or genomic_benchmarks.
        reader: options of the labelled reader (sequence_col, label_cols, genome...).
        batch_size: sequences per forward pass.
        chunk: sequences per part file; a stopped run resumes after its last whole chunk.
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        resume: continue the parts (OUTPUT.parts/) a stopped run left.
        overwrite: replace an existing output.
        progress: show a progress bar.
        tiling: a sequence longer than the model gets the mean of its windows' probabilities or,
            with --tiling.combine max, the softmax (sigmoid) of its windows' largest logits, so that
            class probabilities still sum to 1 (--tiling.window, --tiling.stride). Off by default.
        trainer: run on several processes, devices or nodes (--trainer.devices,
            --trainer.num_nodes, --trainer.accelerator): the ranks share the chunks and rank 0
            joins them (see hyenadna.inference.sharding); the other ranks return None.
    """
    from hyenadna.checks.values import positive

    positive("--chunk", chunk)
    positive("--batch_size", batch_size)
    sequence_command_plan("predict", model, input, reader, output).check()
    rank = launch(trainer) or alone(resolve_device(device))
    seq_model = load_task_model(model, map_location=rank.device).eval()
    names, seqs, truths = _read_sequences(input, format, reader, seq_model.max_length, tiling)
    config = seq_model.head_config
    settings = {
        "files": files_fingerprint(model, sequence_input_files(input)),
        "format": format,
        "reader": json.dumps(reader or {}, sort_keys=True),
        "tiling": json.dumps(asdict(tiling) if tiling is not None and tiling.enabled else None),
        "chunk": chunk,
    }
    header = prediction_table(config, [], np.zeros((0, len(config.labels))), [] if truths is not None else None)

    def writer(rows: list[int]):
        chunk_names = [names[i] for i in rows]
        values = predict_sequences(seq_model, [seqs[i] for i in rows], batch_size, names=chunk_names, tiling=tiling)
        chunk_truths = [truths[i] for i in rows] if truths is not None else None
        text = prediction_table(config, chunk_names, values, chunk_truths)[len(header) :]
        return lambda tmp: Path(tmp).write_text(text)

    bar = tqdm(unit=" seq", desc="predict", disable=not (progress and rank.leader), mininterval=1.0)
    rows = chunked(range(len(seqs)), chunk)
    if not run_chunks(output, rank, settings, ".tsv", resume, overwrite, rows, writer, join_text(header), bar):
        return None
    return {"rows": len(seqs), "output": output}


def _read_sequences(input: str | dict[str, str], format: str, reader: dict[str, Any] | None, max_length: int,
                    tiling: Tiling | None) -> tuple[list[str], list[str], list[tuple[str, ...]] | None]:  # fmt: skip
    """Names, sequences and true labels (None for a plain FASTA), each sequence checked before
    the chunk folder exists, not in the middle of the run: its bases, and a length over the model's
    (tiled with ``tiling``, else a hint)."""
    names, seqs, truths = read_sequence_input(input, format, reader or {})
    check_bases(input, names, seqs)
    if tiling is not None and tiling.enabled:
        tiling.check(max_length)
    else:
        too_long_hint(seqs, max_length, names)
    return names, seqs, truths


def check_bases(source: str | dict[str, str], names: list[str], seqs: list[str]) -> None:
    """Refuse, naming the input and the record, a sequence with a character the tokenizer
    rejects: found before any chunk is written, so no ``--resume`` is offered that could not help."""
    from hyenadna.data.tokenizer import CharacterTokenizer

    tokenizer = CharacterTokenizer()
    where = source if isinstance(source, str) else "the input"
    for name, seq in zip(names, seqs):
        tokenizer.encode_bases(seq, name=f"{where}: record {name!r}")
