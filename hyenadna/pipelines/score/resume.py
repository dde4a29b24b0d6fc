"""What a stopped ``score --vcf`` run in one process leaves (``OUTPUT.partial``, its settings in
``OUTPUT.partial.json``), and the checks that let a resume continue it only with the same
model, weights, inputs and options."""

from __future__ import annotations

import json
from pathlib import Path

from hyenadna.errors import HyenaDNAError
from hyenadna.inference.sharding import check_recorded_settings
from hyenadna.io.atomic import atomic_write_text, partial_output


def open_partial_table(
    output: str, header: str, resume: bool, overwrite: bool, settings: dict
) -> tuple[Path, Path, int]:
    """The output, its ``.partial`` and the rows already in it. The run's settings and input
    fingerprints go to ``OUTPUT.partial.json`` beside it; a resume with others is refused."""
    out, partial = partial_output(output, resume, overwrite)
    recorded = partial.with_name(partial.name + ".json")
    if resume and partial.exists():
        check_recorded_settings(partial, recorded, settings)
        return out, partial, _rows_written(partial, header)
    atomic_write_text(recorded, json.dumps(settings, sort_keys=True))
    partial.write_text(header + "\n")
    return out, partial, 0


def _rows_written(partial: Path, header: str) -> int:
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


def weights_digest(model) -> str:
    """A digest of the model's weights (the first 4 KB of each tensor, with the names): a
    resume with another model, or other weights under the same name, is refused."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8)[:4096].numpy().tobytes())
    return digest.hexdigest()
