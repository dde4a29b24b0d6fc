"""How a user gets a model: :func:`load` by preset name, bundled name, folder or hub id."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hyenadna.checks.devices import check_device, check_dtype
from hyenadna.config import PRESETS, HyenaConfig
from hyenadna.errors import HyenaDNAError
from hyenadna.io.bundled import bundled_models, verified_folder
from hyenadna.io.hub import hub_snapshot, is_hub_id
from hyenadna.model.hyena_dna import HyenaDNA


def load(
    name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    revision: str | None = None,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    **overrides,
) -> HyenaDNA:
    """A model, in eval mode, from a preset name (random initialisation), a bundled pretrained
    model's name (``tiny-1k-chr20``: see ``hyenadna/weights/*/MODEL_CARD.md``), a folder (ours, a
    released HyenaDNA checkpoint or the Hugging Face port's ``-hf`` layout), or a Hugging Face
    hub id ``owner/name`` (needs ``pip install 'hyenadna[hub]'``; ``revision`` and
    ``local_files_only`` and ``cache_dir`` as in ``huggingface_hub``, whose cache and
    ``HF_HUB_OFFLINE`` apply).

    ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``: CUDA when available) and ``dtype``
    (float32, float64, bfloat16 or float16, as a torch dtype or its name) move the model; both
    are checked before anything is read, and every weight is checked finite as it loads.
    ``overrides`` replace config fields, for example ``fftconv_impl="ref"``. Training code sets
    train mode itself.
    """
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device)
    dtype = check_dtype(dtype)
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        model = HyenaDNA(HyenaConfig.from_preset(name_or_path, **overrides))
        return model.to(device=device, dtype=dtype).eval()
    if isinstance(name_or_path, str) and name_or_path in bundled_models():
        return HyenaDNA.from_pretrained(verified_folder(name_or_path), device=device, dtype=dtype, **overrides)
    if Path(name_or_path).exists():
        return HyenaDNA.from_pretrained(name_or_path, device=device, dtype=dtype, **overrides)
    if isinstance(name_or_path, str) and is_hub_id(name_or_path):
        cache = None if cache_dir is None else str(cache_dir)
        folder = hub_snapshot(name_or_path, revision=revision, local_files_only=local_files_only, cache_dir=cache)
        return HyenaDNA.from_pretrained(folder, device=device, dtype=dtype, **overrides)
    known = ", ".join(sorted(PRESETS))
    pretrained = ", ".join(bundled_models()) or "none"
    raise HyenaDNAError(
        f"unknown model {name_or_path!r}: neither a preset ({known}), a bundled pretrained model ({pretrained}), "
        "an existing path, nor a hub id (owner/name)"
    )
