"""The embedding file's HDF5 layout (described in :mod:`hyenadna.pipelines.embed`): creating
its datasets, starting a file or resuming a stopped run's, appending records, cutting a stopped
run's file back to its last whole chunk, and joining the chunk files of a run on several processes."""

from __future__ import annotations

import numpy as np

from hyenadna.errors import HyenaDNAError

DESCRIPTIONS = {  # written into the file beside each dataset (attribute "description")
    "embeddings": "pooled hidden states, one row per record in input order (N, d_model)",
    "names": "record names (FASTA header, BED name or region, read name), UTF-8",
    "contig": "contig of each record (the FASTA record's name for FASTA input)",
    "start": "0-based start of each record on its contig, half-open with end",
    "end": "0-based end (exclusive) of each record on its contig",
    "strand": "+, - or . (unknown) for each record",
    "token_embeddings": "per-base hidden states of all records, concatenated (sum of lengths, d_model); "
    "record i is rows token_offsets[i]:token_offsets[i+1]",
    "token_offsets": "row offsets of each record's bases in token_embeddings (N + 1), int64",
}


def create_datasets(h5, d_model: int, dtype: str, per_token: bool, chunk: int) -> None:
    import h5py

    text = h5py.string_dtype("utf-8")
    h5.create_dataset("embeddings", (0, d_model), dtype=dtype, maxshape=(None, d_model), chunks=(chunk, d_model))
    for name, kind in (("names", text), ("contig", text), ("strand", text)):
        h5.create_dataset(name, (0,), dtype=kind, maxshape=(None,), chunks=(chunk,))
    for name in ("start", "end"):
        h5.create_dataset(name, (0,), dtype="int64", maxshape=(None,), chunks=(chunk,))
    if per_token:
        h5.create_dataset(
            "token_embeddings",
            (0, d_model),
            dtype=dtype,
            maxshape=(None, d_model),
            chunks=(4096, d_model),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        h5.create_dataset("token_offsets", data=np.zeros(1, dtype=np.int64), maxshape=(None,), chunks=(chunk,))
    for name, dataset in h5.items():
        dataset.attrs["description"] = DESCRIPTIONS[name]
    h5.attrs["format"] = "hyenadna embeddings; each dataset's 'description' attribute says what it holds"


def open_hdf5(path, mode: str):
    """``h5py.File(path, mode)``, with a torn or foreign file refused by name."""
    import h5py

    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise HyenaDNAError(
            f"{path} cannot be read as HDF5 (torn or not ours: {exc}); delete it to start again"
        ) from None


def start_file(h5, settings: dict, d_model: int, chunk: int) -> None:
    """A new embedding file: the run's settings as attributes, no record yet, the empty datasets."""
    h5.attrs.update(settings)
    h5.attrs["records_done"] = 0
    h5.attrs["complete"] = False
    create_datasets(h5, d_model, settings["dtype"], settings["per_token"], chunk)


def start_or_resume(h5, path: object, fresh: bool, settings: dict, d_model: int, chunk: int) -> int:
    """The records already in ``h5`` (``path``): none in a new file, which is started; a stopped
    run's file must hold the same ``settings`` and is cut back to its last whole chunk."""
    if not fresh and not ("embeddings" in h5 and "records_done" in h5.attrs):
        raise HyenaDNAError(f"{path} is not an embedding file a stopped run left; delete it to start again")
    if "embeddings" not in h5:
        start_file(h5, settings, d_model, chunk)
        return 0
    for key, value in settings.items():
        if h5.attrs.get(key) != value:
            what = "an input or model file changed since" if key == "files" else f"{key} differs from"
            raise HyenaDNAError(f"{path}: cannot resume, {what} the stopped run's")
    done = int(h5.attrs["records_done"])
    truncate_records(h5, done)
    return done


def truncate_records(h5, n: int) -> None:
    """Cut every per-record dataset to ``n`` rows (drops what a killed run wrote past its last chunk)."""
    for name in ("embeddings", "names", "contig", "strand", "start", "end"):
        h5[name].resize(n, axis=0)
    if "token_offsets" in h5:
        h5["token_offsets"].resize(n + 1, axis=0)
        h5["token_embeddings"].resize(int(h5["token_offsets"][n]), axis=0)


def append_rows(h5, name: str, values) -> None:
    dataset = h5[name]
    start = dataset.shape[0]
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values


def append_part(h5, part) -> None:
    """Append the records of one chunk file to the merged file (token offsets shifted)."""
    append_rows(h5, "embeddings", part["embeddings"][...])
    for name in ("names", "contig", "strand"):
        append_rows(h5, name, part[name].asstr()[...])
    for name in ("start", "end"):
        append_rows(h5, name, part[name][...])
    if "token_offsets" in part:
        base = int(h5["token_offsets"][-1])
        append_rows(h5, "token_embeddings", part["token_embeddings"][...])
        append_rows(h5, "token_offsets", part["token_offsets"][1:] + base)
