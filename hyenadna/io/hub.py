"""Models named by their Hugging Face hub id (``LongSafari/hyenadna-small-32k-seqlen-hf``).

``huggingface_hub`` is an optional dependency (``pip install 'hyenadna[hub]'``). Its own rules
apply: files come from its cache (``HF_HUB_CACHE`` / ``HF_HOME``), ``HF_HUB_OFFLINE=1`` or
``local_files_only=True`` reads the cache alone, ``revision`` pins a branch, tag or commit.
Only the files a model needs are fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

from hyenadna.errors import HyenaDNAError

MODEL_FILES = ["config.json", "model.safetensors", "pytorch_model.bin", "weights.ckpt"]
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` has the form of a hub repository id, ``owner/name``."""
    return bool(_HUB_ID.fullmatch(name))


def hub_snapshot(
    repo_id: str, revision: str | None = None, local_files_only: bool | None = None, cache_dir: str | None = None
) -> Path:
    """The local folder holding ``repo_id``'s model files at ``revision``, downloaded into the
    hub cache (``cache_dir``, default huggingface_hub's) unless already there (or only looked
    up there when offline)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise HyenaDNAError(
            f"{repo_id!r} looks like a Hugging Face hub id; loading it needs huggingface_hub "
            "(pip install 'hyenadna[hub]')"
        ) from None
    kwargs: dict = {} if local_files_only is None else {"local_files_only": local_files_only}
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES, **kwargs)
    except Exception as exc:  # huggingface_hub raises many types: offline, not found, auth, network
        where = f" at revision {revision!r}" if revision else ""
        raise HyenaDNAError(
            f"cannot get model {repo_id!r}{where} from the Hugging Face hub or its cache: {type(exc).__name__}: {exc}"
        ) from None
    return Path(folder)
