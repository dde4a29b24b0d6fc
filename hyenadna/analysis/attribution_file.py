"""The attribution file of ``hyenadna explain``, which ``hyenadna motifs`` reads: writing it, its
chunk files, and reading it back with every dataset checked against the others.

Layout (N records, C outputs; see :mod:`hyenadna.analysis.attribution`):

* ``names``, ``sequences`` (UTF-8 strings, N), ``offsets`` (int64, N + 1): record i covers rows
  ``offsets[i]:offsets[i+1]`` of every per-base dataset, as in the embedding export;
* one dataset per method, ``ism``, ``grad_x_input``, ``integrated_gradients``: (sum of lengths,
  4, C) float32, bases A, C, G, T;
* ``outputs`` (the C output names), ``labels`` (the true labels, when the input had them: per
  record a JSON list of its labels, attribute ``labels_encoding = "json"``, so a label holding
  ``;`` survives; files written before it joined a record's labels with ``;`` and are still read);
* attributes: ``model``, ``methods``, ``output`` (logit or probability), ``steps``,
  ``baseline``, ``complete``.

A run's chunks go to ``.npz`` files (:func:`write_chunk`), read back without pickle
(:func:`read_chunks`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hyenadna.errors import HyenaDNAError

LABELS_ENCODING = "json"


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
