"""``hyenadna explain`` (attributions to HDF5, ISM to TSV, logos) and ``hyenadna motifs``.

Attribution file layout (N records, C outputs; see :mod:`hyenadna.analysis.attribution`):

* ``names``, ``sequences`` (UTF-8 strings, N), ``offsets`` (int64, N + 1): record i covers rows
  ``offsets[i]:offsets[i+1]`` of every per-base dataset, as in the embedding export;
* one dataset per method, ``ism``, ``grad_x_input``, ``integrated_gradients``: (sum of lengths,
  4, C) float32, bases A, C, G, T;
* ``outputs`` (the C output names), ``labels`` (the true labels, when the input had them: per
  record a JSON list of its labels, attribute ``labels_encoding = "json"``, so a label holding
  ``;`` survives; files written before it joined a record's labels with ``;`` and are still read);
* attributes: ``model``, ``methods``, ``output`` (logit or probability), ``steps``,
  ``baseline``, ``complete``.

The records are explained in chunks of ``--chunk``, each chunk's arrays written to
``OUTPUT.parts/`` (``.npz``, read back without pickle) as it is done, and the file is built from
them, under a temporary name renamed when complete: a stopped run continues with ``--resume``,
and ``--trainer.devices`` / ``--trainer.num_nodes`` share the chunks between processes
(:mod:`hyenadna.inference.sharding`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hyenadna.errors import HyenaDNAError
from hyenadna.inference.sharding import ONE_PROCESS, Processes
from hyenadna.io.file_plan import FilePlan

DEFAULT_METHODS = ("grad_x_input", "ism")
FORMATS = ("auto", "table", "fasta", "bed", "genomic_benchmarks")
LABELS_ENCODING = "json"


def load_explained_model(model: str, device: str):
    """A fine-tuned model folder (with ``task.json``) or a language model by name, preset or folder."""
    from hyenadna.heads.loading import load_task_model
    from hyenadna.heads.task_model import TASK_FILE
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


def write_attributions(path: str, names, seqs, labels, outputs: list[str], results: dict, attrs: dict) -> None:
    """The attribution file (module docstring) at ``path``, written directly: callers write to
    a temporary name and rename it."""
    import h5py

    text = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as h5:
        h5.create_dataset("names", data=np.array(names, dtype=object), dtype=text)
        h5.create_dataset("sequences", data=np.array(seqs, dtype=object), dtype=text)
        h5.create_dataset("offsets", data=np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64))
        h5.create_dataset("outputs", data=np.array(outputs, dtype=object), dtype=text)
        if labels is not None:  # a JSON list per record: any label text round-trips
            rows = [json.dumps(list(x), ensure_ascii=False) for x in labels]
            h5.create_dataset("labels", data=np.array(rows, dtype=object), dtype=text)
            h5.attrs["labels_encoding"] = LABELS_ENCODING
        for method, arrays in results.items():
            data = np.concatenate(arrays) if arrays else np.zeros((0, 4, len(outputs)), np.float32)
            h5.create_dataset(method, data=data.astype(np.float32), compression="gzip", chunks=True)
        for key, value in attrs.items():
            h5.attrs[key] = value
        h5.attrs["complete"] = True


def write_chunk(path: str, results: dict[str, list[np.ndarray]]) -> None:
    """One chunk's arrays as ``.npz``: per method, the records' (L, 4, C) arrays end to end, and
    their lengths."""
    arrays = {method: np.concatenate(values).astype(np.float32) for method, values in results.items()}
    lengths = [len(a) for a in next(iter(results.values()))]
    with open(path, "wb") as fh:
        np.savez(fh, lengths=np.asarray(lengths, dtype=np.int64), **arrays)


def read_chunks(paths: list[Path], methods: list[str]) -> dict[str, list[np.ndarray]]:
    """The per-record arrays of every chunk file, in order (loaded without pickle)."""
    results: dict[str, list[np.ndarray]] = {method: [] for method in methods}
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            bounds = np.cumsum(data["lengths"])[:-1]
            for method in methods:
                results[method].extend(np.split(data[method], bounds))
    return results


def read_attributions(path: str | Path, method: str) -> dict[str, Any]:
    """Names, sequences, labels (or None), output names and the per-record (L, 4, C) arrays of
    ``method`` from an attribution file; anything else (not HDF5, another layout, torn offsets)
    is refused in one line naming the file."""
    import h5py

    from hyenadna.analysis.attribution import METHODS

    path = Path(path)
    if method not in METHODS:
        raise HyenaDNAError(f"method must be one of {METHODS}, got {method!r}")
    if not path.is_file():
        raise HyenaDNAError(f"attribution file not found: {path}")
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise HyenaDNAError(f"{path} is not an HDF5 file (hyenadna explain writes attributions as HDF5)") from None
    with h5:
        if not h5.attrs.get("complete", False):
            raise HyenaDNAError(f"{path}: not a complete attribution file")
        if method not in h5:
            have = [m for m in METHODS if m in h5]
            raise HyenaDNAError(f"{path} holds no {method!r} attributions (it has {', '.join(have) or 'none'})")
        missing = [k for k in ("names", "sequences", "outputs", "offsets") if k not in h5]
        if missing:
            raise HyenaDNAError(f"{path}: not an attribution file of hyenadna explain (no {', '.join(missing)})")
        offsets = np.asarray(h5["offsets"][()])
        data = h5[method][()]
        strings = {k: [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(h5[k][()])] for k in
                   ("names", "sequences", "outputs", "labels") if k in h5}  # fmt: skip
        encoding = h5.attrs.get("labels_encoding", "")
    _check_layout(path, strings, offsets, data)
    arrays = [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    labels = _decode_labels(path, strings["labels"], encoding) if "labels" in strings else None
    return {"names": strings["names"], "sequences": strings["sequences"], "outputs": strings["outputs"],
            "labels": labels, "arrays": arrays}  # fmt: skip


def _check_layout(path: Path, strings: dict[str, list[str]], offsets: np.ndarray, data: np.ndarray) -> None:
    """Refuse an attribution file whose datasets do not fit together (module docstring)."""
    n = len(strings["names"])
    lengths = [len(s) for s in strings["sequences"]]
    problem = None
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) != n + 1 or len(lengths) != n:
        problem = f"{n} names, {len(lengths)} sequences and {offsets.size} offsets (want names + 1)"
    elif offsets[0] != 0 or np.diff(offsets).tolist() != lengths:
        problem = "its offsets do not follow the sequences' lengths"
    elif data.ndim != 3 or data.shape[1:] != (4, len(strings["outputs"])) or len(data) != offsets[-1]:
        problem = f"attributions of shape {data.shape}, expected ({offsets[-1]}, 4, {len(strings['outputs'])})"
    elif "labels" in strings and len(strings["labels"]) != n:
        problem = f"{len(strings['labels'])} labels for {n} records"
    if problem:
        raise HyenaDNAError(f"{path}: not a consistent attribution file: {problem}")


def _decode_labels(path: Path, rows: list[str], encoding: str) -> list[tuple[str, ...]]:
    """Each record's labels: a JSON list (this version) or ``;``-joined (files written before)."""
    if encoding != LABELS_ENCODING:
        return [tuple(x.split(";")) for x in rows]
    labels = []
    for i, text in enumerate(rows):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HyenaDNAError(f"{path}: labels of record {i} are not a JSON list of strings: {text[:60]!r}")
        labels.append(tuple(value))
    return labels


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
        output: the HDF5 file of attributions (layout: hyenadna.pipelines.explain); its folder
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
    import time

    from tqdm import tqdm

    from hyenadna.analysis.attribution import Explained, check_sequences, target_index
    from hyenadna.analysis.plotting import attribution_pictures
    from hyenadna.data.labels import read_sequence_input, sequence_input_files
    from hyenadna.inference.sharding import alone, chunked, launch, run_chunks
    from hyenadna.io.atomic import atomic_write_text, files_fingerprint
    from hyenadna.training.trainer import resolve_device

    methods = check_explain_options(methods, format, target_output, steps, baseline, max_records, plot_records,
                                    batch_size, chunk, ism_tsv, plots)  # fmt: skip
    explain_plan(model, input, reader, output, ism_tsv, plots)
    for path, option in ((output, "--output"), (ism_tsv, "--ism_tsv")):
        if path and Path(path).exists() and not overwrite:
            raise HyenaDNAError(f"{path} exists; pass --overwrite to replace it ({option})")
    rank = launch(trainer) or alone(resolve_device(device))
    net = load_explained_model(model, rank.device)
    names, seqs, labels = read_sequence_input(input, format, reader or {}, split)
    if max_records is not None:
        names, seqs = names[:max_records], seqs[:max_records]
        labels = labels[:max_records] if labels is not None else None
    if not seqs:
        raise HyenaDNAError(f"{input}: no records to explain")
    outputs = Explained(net, target_output).names
    if target is not None:
        target_index(outputs, target)  # refused now, not after the HDF5 is written
    mutant_counts = check_sequences(net, seqs, names)  # before the chunk folder: no tiling here
    attrs = {"model": model, "methods": json.dumps(methods), "output": target_output, "steps": steps,
             "baseline": baseline}  # fmt: skip
    settings = {**attrs, "files": files_fingerprint(model, sequence_input_files(input)), "format": format,
                "split": split, "reader": json.dumps(reader or {}, sort_keys=True), "max_records": max_records,
                "chunk": chunk}  # fmt: skip
    parts = Path(output).with_name(Path(output).name + ".parts")
    left_before = {p.name for p in parts.glob("chunk*")} if rank.leader and parts.is_dir() else set()
    start = time.perf_counter()
    results: dict[str, list[np.ndarray]] = {}
    computed = {"mutants": 0}

    def merge(paths: list[Path], path: str) -> None:
        fresh = [k for k, p in enumerate(paths) if p.name not in left_before]  # computed in this session
        computed["mutants"] = sum(sum(mutant_counts[k * chunk : (k + 1) * chunk]) for k in fresh)
        results.update(read_chunks(paths, methods))
        write_attributions(path, names, seqs, labels, outputs, results, attrs)

    def writer(rows: list[int]):
        arrays = compute_attributions(net, [seqs[i] for i in rows], methods, target_output, steps, baseline,
                                      batch_size, False)  # fmt: skip
        return lambda tmp: write_chunk(tmp, arrays)

    bar = tqdm(unit=" seq", desc="explain", disable=not (progress and rank.leader), mininterval=1.0)
    rows = chunked(range(len(seqs)), chunk)
    if not run_chunks(output, rank, settings, ".npz", resume, overwrite, rows, writer, merge, bar):
        return None
    seconds = time.perf_counter() - start
    summary: dict[str, Any] = {"records": len(seqs), "bases": sum(map(len, seqs)), "methods": methods,
                               "outputs": outputs, "seconds": round(seconds, 2), "output": output}  # fmt: skip
    if "ism" in results:
        summary["ism_mutants"] = computed["mutants"]
        if computed["mutants"]:
            summary["mutants_per_s"] = round(computed["mutants"] / max(seconds, 1e-9), 1)
    if ism_tsv:
        atomic_write_text(ism_tsv, ism_table(names, seqs, results["ism"], outputs))
        summary["ism_tsv"] = ism_tsv
    if plots:
        summary["plots"] = attribution_pictures(Path(plots), names, seqs, results, outputs, target, plot_records)
    return summary


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
    from hyenadna.data.labels import sequence_input_files

    plan = FilePlan("explain")
    plan.model("--model", model)
    for path in sequence_input_files(input):
        plan.input("--input", path)  # a folder's files too
    plan.input("--reader.genome", (reader or {}).get("genome"))
    plan.output("--output", output, companions=(".parts", ".lock"))
    plan.output("--ism_tsv", ism_tsv)
    plan.output("--plots", plots, folder=True)
    return plan.check()
