"""``hyenadna explain`` (attributions to HDF5, ISM to TSV, logos) and ``hyenadna motifs``.

Attribution file layout (N records, C outputs; see :mod:`hyenadna.attribution`):

* ``names``, ``sequences`` (UTF-8 strings, N), ``offsets`` (int64, N + 1): record i covers rows
  ``offsets[i]:offsets[i+1]`` of every per-base dataset, as in the embedding export;
* one dataset per method, ``ism``, ``grad_x_input``, ``integrated_gradients``: (sum of lengths,
  4, C) float32, bases A, C, G, T;
* ``outputs`` (the C output names), ``labels`` (the true labels, when the input had them);
* attributes: ``model``, ``methods``, ``output`` (logit or probability), ``steps``,
  ``baseline``, ``complete``.

The records are explained in chunks of ``--chunk``, each chunk's arrays written to
``OUTPUT.parts/`` (``.npz``, read back without pickle) as it is done, and the file is built from
them, under a temporary name renamed when complete: a stopped run continues with ``--resume``,
and ``--trainer.devices`` / ``--trainer.num_nodes`` share the chunks between processes
(:mod:`hyenadna.pipelines.sharding`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.sharding import ONE_PROCESS, Processes


def load_explained_model(model: str, device: str):
    """A fine-tuned model folder (with ``task.json``) or a language model by name, preset or folder."""
    from hyenadna import load
    from hyenadna.heads import TASK_FILE
    from hyenadna.task_model import load_task_model

    if (Path(model) / TASK_FILE).is_file():
        return load_task_model(model, map_location=device).eval()
    return load(model, device=device)


def compute_attributions(net, seqs: list[str], methods: list[str], output: str, steps: int, baseline: str,
                         batch_size: int, progress: bool) -> dict[str, list[np.ndarray]]:  # fmt: skip
    """Each method's per-sequence (L, 4, C) arrays."""
    from hyenadna import attribution

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
        if labels is not None:
            h5.create_dataset("labels", data=np.array([";".join(x) for x in labels], dtype=object), dtype=text)
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
    ``method`` from an attribution file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise HyenaDNAError(f"attribution file not found: {path}")
    with h5py.File(path, "r") as h5:
        if not h5.attrs.get("complete", False):
            raise HyenaDNAError(f"{path}: not a complete attribution file")
        if method not in h5:
            have = [m for m in ("ism", "grad_x_input", "integrated_gradients") if m in h5]
            raise HyenaDNAError(f"{path} holds no {method!r} attributions (it has {', '.join(have)})")
        offsets = h5["offsets"][:]
        data = h5[method][:]
        strings = {k: [v.decode() if isinstance(v, bytes) else v for v in h5[k][:]] for k in
                   ("names", "sequences", "outputs", "labels") if k in h5}  # fmt: skip
    arrays = [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    labels = [tuple(x.split(";")) for x in strings["labels"]] if "labels" in strings else None
    return {"names": strings["names"], "sequences": strings["sequences"], "outputs": strings["outputs"],
            "labels": labels, "arrays": arrays}  # fmt: skip


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


def ism_importance(deltas: np.ndarray, sequence: str) -> np.ndarray:
    """ISM as a logo (L, 4): at each position the sequence's own base, with the mean loss of
    output that replacing it causes (minus the mean delta over the three alternatives); zero
    elsewhere and at non-ACGT positions."""
    out = np.zeros_like(deltas)
    for pos, base in enumerate(sequence.upper()):
        if base in "ACGT":
            b = "ACGT".index(base)
            out[pos, b] = -deltas[pos].sum() / 3  # the own base's delta is 0
    return out


def target_index(outputs: list[str], target: str | None) -> int:
    if target is None:
        return len(outputs) - 1
    if target not in outputs:
        raise HyenaDNAError(f"target {target!r} is not an output of the model ({', '.join(outputs)})")
    return outputs.index(target)


def contrast(arrays: list[np.ndarray], index: int) -> list[np.ndarray]:
    """Attributions toward output ``index`` against the mean of the others (L, 4): for a softmax
    classifier, what favours this class over the rest; the output itself when it is the only one.
    Every method here is linear in the output, so this is the attribution of that difference."""
    others = [j for j in range(arrays[0].shape[-1]) if j != index] if arrays else []
    if not others:
        return [a[..., index] for a in arrays]
    return [a[..., index] - a[..., others].mean(-1) for a in arrays]


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

    Args:
        model: a fine-tuned model folder (Hyena head or CNN), or a language model (its sequence
            log-likelihood is explained).
        input: sequences: a FASTA (labelled or not), or any labelled format fine-tuning reads.
        output: the HDF5 file of attributions (layout: hyenadna.pipelines.explain).
        methods: some of ism, grad_x_input, integrated_gradients (default: grad_x_input and ism).
        format: auto, table, fasta, bed or genomic_benchmarks.
        reader: options of the labelled reader (sequence_col, label_cols, split_col, name_col...).
        split: keep the records of one split (train, val, test) of a file with a split column.
        max_records: explain the first N records only.
        target_output: attribute logits (default) or probabilities of a classifier.
        steps: integrated gradients' intervals along the path.
        baseline: integrated gradients' start: uniform (0.25 per base) or zero.
        ism_tsv: also write ISM as a long table (name, position, ref, alt, delta per output).
        plots: a folder for pictures (needs hyenadna[plot]): attribution logos and ISM heatmaps.
        plot_records: how many records get pictures.
        target: the output whose attributions are drawn, against the mean of the others (default: the last).
        batch_size: sequences per gradient batch (ISM batches mutants, at least 32).
        chunk: records per part file; a stopped run resumes after its last whole chunk.
        device: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
        resume: continue the parts (OUTPUT.parts/) a stopped run left.
        overwrite: replace an existing output.
        progress: show progress.
        trainer: run on several processes, devices or nodes (--trainer.devices,
            --trainer.num_nodes, --trainer.accelerator): the ranks share the chunks and rank 0
            writes the outputs (see hyenadna.pipelines.sharding); the other ranks return None.
    """
    import time

    from tqdm import tqdm

    from hyenadna.atomic import atomic_write_text, files_fingerprint
    from hyenadna.attribution import Explained
    from hyenadna.data.labels import read_sequence_input, sequence_input_files
    from hyenadna.pipelines.common import resolve_device
    from hyenadna.pipelines.sharding import alone, chunked, launch, run_chunks

    methods = list(methods or ["grad_x_input", "ism"])
    if ism_tsv and Path(ism_tsv).exists() and not overwrite:
        raise HyenaDNAError(f"{ism_tsv} exists; pass --overwrite to replace it")
    if ism_tsv and "ism" not in methods:
        raise HyenaDNAError("--ism_tsv needs ism among --methods")
    if chunk < 1:
        raise HyenaDNAError(f"chunk must be positive, got {chunk}")
    rank = launch(trainer) or alone(resolve_device(device))
    net = load_explained_model(model, rank.device)
    names, seqs, labels = read_sequence_input(input, format, reader or {}, split)
    if max_records is not None:
        names, seqs = names[:max_records], seqs[:max_records]
        labels = labels[:max_records] if labels is not None else None
    outputs = Explained(net, target_output).names
    attrs = {"model": model, "methods": json.dumps(methods), "output": target_output, "steps": steps,
             "baseline": baseline}  # fmt: skip
    settings = {**attrs, "files": files_fingerprint(model, sequence_input_files(input)), "format": format,
                "split": split, "reader": json.dumps(reader or {}, sort_keys=True), "max_records": max_records,
                "chunk": chunk}  # fmt: skip
    start = time.perf_counter()
    results: dict[str, list[np.ndarray]] = {}

    def merge(paths: list[Path], path: str) -> None:
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
        summary["mutants_per_s"] = round(sum(3 * len(s) for s in seqs) / max(seconds, 1e-9), 1)
    if ism_tsv:
        atomic_write_text(ism_tsv, ism_table(names, seqs, results["ism"], outputs))
        summary["ism_tsv"] = ism_tsv
    if plots:
        summary["plots"] = draw_attributions(Path(plots), names, seqs, results, outputs, target, plot_records)
    return summary


def draw_attributions(folder: Path, names, seqs, results: dict, outputs: list[str], target: str | None,
                      count: int) -> list[str]:  # fmt: skip
    """Logos of each gradient method and ISM heatmaps (mean over alternatives as a logo too) for
    the first ``count`` records, toward ``target`` against the other outputs."""
    from hyenadna import plotting

    index = target_index(outputs, target)
    what = outputs[index] if len(outputs) < 2 else f"{outputs[index]} vs rest"
    written = []
    for i in range(min(count, len(seqs))):
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in names[i])
        for method, arrays in results.items():
            scores = contrast([arrays[i]], index)[0]
            if method == "ism":
                heatmap = folder / f"{i:04d}_{safe}.ism_heatmap.png"
                written.append(str(plotting.ism_heatmap(scores, seqs[i], heatmap, f"{names[i]}: ISM, {what}")))
                scores = ism_importance(scores, seqs[i])
            title = f"{names[i]}: {method}, {what}"
            written.append(str(plotting.attribution_logo(scores, folder / f"{i:04d}_{safe}.{method}.png", title)))
    return written
