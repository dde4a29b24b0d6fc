"""The layout of the Hugging Face port of HyenaDNA (the ``-hf`` repositories, loaded by
transformers with ``trust_remote_code``), translated to the released layout that
:func:`hyenadna.io.checkpoint.translate_released_state` reads.

Its ``config.json`` is flat (``max_seq_len``, ``hyena_order``, ``activation_freq``...), its
weights sit under ``hyena.backbone.`` (``backbone.`` for the bare model) in
``model.safetensors`` or ``pytorch_model.bin``, with the same module names below that as the
released checkpoints, and its implicit filters are modulated with a shift of 0.05 (the released
training code's is 0), which :func:`config_from_hf` sets.
"""

from __future__ import annotations

from typing import Any

import torch

from hyenadna.config import HyenaConfig
from hyenadna.errors import HyenaDNAError

HF_SHIFT = 0.05  # HyenaExponentialModulation's default shift in the port
_FIELDS = {  # port config -> ours
    "d_model": "d_model",
    "n_layer": "n_layer",
    "d_inner": "d_inner",
    "vocab_size": "vocab_size",
    "max_seq_len": "l_max",
    "filter_order": "filter_order",
    "hyena_order": "order",
    "short_filter_order": "short_filter_order",
    "emb_dim": "emb_dim",
    "num_inner_mlps": "num_inner_mlps",
    "activation_freq": "sin_freq",
    "layer_norm_epsilon": "layer_norm_epsilon",
    "initializer_range": "initializer_range",
    "pad_vocab_size_multiple": "pad_vocab_size_multiple",
    "embed_dropout": "embed_dropout",
    "resid_dropout": "resid_dropout",
}
REQUIRED = ("d_model", "n_layer", "max_seq_len")


def is_hf_config(values: dict[str, Any]) -> bool:
    """Whether a ``config.json`` is the port's (flat, ``max_seq_len``) rather than ours or the
    released one."""
    return "max_seq_len" in values or values.get("model_type") in ("hyenadna", "hyena")


def config_from_hf(values: dict[str, Any], source: str = "config.json") -> HyenaConfig:
    """Our config for a port ``config.json``: its fields renamed, the port's filter shift, the
    D skip term always on (the port applies it whatever ``use_bias`` says)."""
    missing = [key for key in REQUIRED if key not in values]
    if missing:
        raise HyenaDNAError(f"{source}: a Hugging Face HyenaDNA config needs {missing}")
    fields = {ours: values[theirs] for theirs, ours in _FIELDS.items() if values.get(theirs) is not None}
    return HyenaConfig(**fields, modulation_shift=HF_SHIFT, filter_bias=True, learn_pos_emb=False)


def released_keys(state: dict[str, torch.Tensor], config: HyenaConfig, train_freq: bool = True) -> dict:
    """The port's weights under the released names (``backbone.``, ``lm_head.weight``), with
    the Sin frequencies a port trained with ``train_freq: false`` keeps out of its weights."""
    out = {}
    for key, value in state.items():
        name = key.removeprefix("hyena.")
        if not (name.startswith("backbone.") or name == "lm_head.weight"):
            raise HyenaDNAError(f"unexpected weight {key!r} in a Hugging Face HyenaDNA checkpoint")
        out[name] = value
    if not train_freq:
        for layer in range(config.n_layer):
            key = f"backbone.layers.{layer}.mixer.filter_fn.implicit_filter.1.freq"
            out.setdefault(key, torch.full((1, config.filter_order), float(config.sin_freq)))
    return out
