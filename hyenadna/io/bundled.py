"""Pretrained models shipped inside the package, loadable by name with no network.

Each lives in ``hyenadna/weights/<name>/``: ``config.json`` and ``model.safetensors`` (our usual
format), ``SHA256SUMS`` and ``MODEL_CARD.md`` (how it was trained, on what, and how it scores
against a Markov chain). Loading checks the weights against ``SHA256SUMS``, so a damaged install
is an error naming the file rather than a model that quietly predicts nonsense.
"""

from __future__ import annotations

from pathlib import Path

from hyenadna.data.files import file_sha256
from hyenadna.errors import HyenaDNAError

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
CHECKSUMS = "SHA256SUMS"


def bundled_models() -> dict[str, Path]:
    """Name -> folder of every pretrained model in the package."""
    if not WEIGHTS.is_dir():
        return {}
    return {p.name: p for p in sorted(WEIGHTS.iterdir()) if (p / "config.json").is_file()}


def verified_folder(name: str) -> Path:
    """The folder of bundled model ``name``, after checking every file ``SHA256SUMS`` lists."""
    folders = bundled_models()
    if name not in folders:
        raise HyenaDNAError(f"no bundled model {name!r}; the package has {sorted(folders)}")
    folder = folders[name]
    sums = folder / CHECKSUMS
    if not sums.is_file():
        raise HyenaDNAError(f"{folder}: no {CHECKSUMS}; the bundled model cannot be verified")
    for line in sums.read_text().splitlines():
        expected, _, filename = line.partition("  ")
        if not filename:
            continue
        path = folder / filename
        if not path.is_file() or file_sha256(path) != expected:
            raise HyenaDNAError(f"{path}: missing or damaged (sha256 differs from {sums}); reinstall hyenadna")
    return folder
