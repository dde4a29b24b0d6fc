"""Saving and loading models: our format, and import of released HyenaDNA checkpoints.

Our format is a folder with ``config.json`` (a :class:`HyenaConfig`) and ``model.safetensors``
(weights only: loading it cannot run code). Files are written under temporary names and
renamed when complete, so an interrupted save never leaves a folder that looks whole.

A released HyenaDNA folder holds ``config.json`` in the training code's layout (a nested
``layer`` dict) and ``weights.ckpt``, a Lightning checkpoint. Its keys carry a ``model.``
prefix, may wrap the mixer and MLP as ``.mixer.layer.`` / ``.mlp.layer.`` (gradient
checkpointing), repeat the filter's Sin frequency under three keys, store buffers that we
recompute, and sit beside torchmetrics state. :func:`import_released` translates all of that
and checks what it drops.

Whatever the format, every weight is checked finite as it loads (:func:`check_finite`): a file
holding NaN or infinity would otherwise load without a word and make every embedding and score
NaN.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hyenadna.config import HyenaConfig
from hyenadna.errors import HyenaDNAError
from hyenadna.io.atomic import atomic_write
from hyenadna.io.hf_port import config_from_hf, is_hf_config, released_keys
from hyenadna.io.safe_pickle import safe_torch_load
from hyenadna.modules.filter import decay_rates, positional_embedding

if TYPE_CHECKING:  # the model imports this module: the loaders take its class as an argument
    from hyenadna.model.hyena_dna import HyenaDNA

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RELEASED_WEIGHTS_NAME = "weights.ckpt"
HF_PICKLE_NAME = "pytorch_model.bin"  # the Hugging Face port's older weight file


# ---------------------------------------------------------------- our format


def save_pretrained(model: HyenaDNA, path: str | os.PathLike) -> None:
    """Write ``config.json`` and ``model.safetensors`` into the folder ``path``."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    config_text = json.dumps(model.config.to_dict(), indent=2, sort_keys=True) + "\n"
    # weights first: a folder whose config exists but whose weights are stale would mislead
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(config_text))


def load_pretrained(
    model_class: type[HyenaDNA], path: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
) -> HyenaDNA:
    """Load a model folder in our format or in the released HyenaDNA format as a ``model_class``.

    ``overrides`` replace config fields after reading (for example ``modulation_shift=0.05``
    to reproduce the hub's standalone port, or ``checkpoint_mixer=True``).
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise HyenaDNAError(f"no model folder at {path}")
    if (folder / CONFIG_NAME).is_file() and is_hf_config(read_json_object(folder / CONFIG_NAME, "model config")):
        return import_hf(model_class, folder, map_location=map_location, **overrides)
    if (folder / WEIGHTS_NAME).exists():
        config = HyenaConfig.from_json(folder / CONFIG_NAME)
        config = HyenaConfig.from_dict({**config.to_dict(), **overrides}, source="overrides")
        try:
            state = load_file(folder / WEIGHTS_NAME, device=str(map_location))
        except (SafetensorError, OSError) as exc:
            raise HyenaDNAError(f"{folder / WEIGHTS_NAME}: cannot read weights: {exc}") from exc
        return _build(model_class, config, state, folder / WEIGHTS_NAME)
    if (folder / RELEASED_WEIGHTS_NAME).exists():
        return import_released(model_class, folder, map_location=map_location, **overrides)
    raise HyenaDNAError(
        f"{folder} holds neither {WEIGHTS_NAME} (our format or the Hugging Face port's) nor "
        f"{RELEASED_WEIGHTS_NAME} (a released HyenaDNA checkpoint)"
    )


def read_json_object(path: Path, what: str = "JSON file") -> dict:
    """The JSON object in ``path``; anything else (unreadable, not JSON, a list) is refused
    with the file's name and ``what`` it should have been."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HyenaDNAError(f"{path}: not a valid {what} ({exc})") from None
    if not isinstance(values, dict):
        raise HyenaDNAError(f"{path}: not a valid {what} (a JSON object is needed)")
    return values


def check_finite(state: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Refuse weights holding NaN or infinity, naming ``source`` (the file) and the first bad tensor."""
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
            continue
        if not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise HyenaDNAError(
                f"{source}: weight {key} holds {bad:,} NaN or infinite value(s) of {value.numel():,}; "
                "the file is corrupt or the training diverged: load another checkpoint"
            )


def _build(model_class: type[HyenaDNA], config: HyenaConfig, state: dict[str, torch.Tensor], source: Path) -> HyenaDNA:
    check_finite(state, source)
    model = model_class(config)
    expected = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} (the config makes {tuple(expected[k].shape)})"
             for k, v in state.items() if k in expected and v.shape != expected[k].shape]  # fmt: skip
    if wrong:
        raise HyenaDNAError(f"{source}: weights do not match the config: {'; '.join(wrong[:3])}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise HyenaDNAError(
            f"{source}: weights do not match the config: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    return model.to(next(iter(state.values())).device) if state else model


# ---------------------------------------------------------------- released HyenaDNA format

_RELEASED_TOP = {
    "d_model": "d_model",
    "n_layer": "n_layer",
    "d_inner": "d_inner",
    "vocab_size": "vocab_size",
    "pad_vocab_size_multiple": "pad_vocab_size_multiple",
    "resid_dropout": "resid_dropout",
    "embed_dropout": "embed_dropout",
    "layer_norm_epsilon": "layer_norm_epsilon",
    "residual_in_fp32": "residual_in_fp32",
    "checkpoint_mixer": "checkpoint_mixer",
    "checkpoint_mlp": "checkpoint_mlp",
}
_RELEASED_LAYER = {
    "l_max": "l_max",
    "order": "order",
    "filter_order": "filter_order",
    "emb_dim": "emb_dim",
    "short_filter_order": "short_filter_order",
    "local_order": "short_filter_order",
    "num_inner_mlps": "num_inner_mlps",
    "w": "sin_freq",
    "modulate": "modulate",
    "shift": "modulation_shift",
    "fast_decay_pct": "fast_decay_pct",
    "slow_decay_pct": "slow_decay_pct",
    "target": "decay_target",
    "bias": "filter_bias",
}
# training-only settings with no effect on a forward pass in eval mode
_RELEASED_IGNORED = {
    "_name_", "name", "fused_mlp", "fused_dropout_add_ln", "fused_bias_fc", "fused_fft_conv",
    "lr", "wd", "lr_pos_emb", "modulation_lr", "dropout", "filter_dropout", "return_hidden_state",
    "process_group", "sequence_parallel", "d_model", "jit_filter", "return_state", "device",
    "dtype", "use_head", "n_classes", "layer", "initializer_cfg", "attn_layer_idx", "attn_cfg",
}  # fmt: skip
# released features this model does not implement, with the value that means "off"
_RELEASED_UNSUPPORTED = {
    "num_heads": 1, "inner_factor": 1, "num_blocks": 1, "outer_mixing": False,
    "post_order_ffn": False, "normalized": False, "linear_mixer": False, "activation": "id",
    "bidirectional": False, "max_position_embeddings": 0,
}  # fmt: skip


def config_from_released(values: dict[str, Any], source: str = "config.json") -> HyenaConfig:
    """Translate a released HyenaDNA ``config.json`` (nested ``layer`` dict) to a HyenaConfig."""
    layer = values.get("layer")
    if not isinstance(layer, dict):
        raise HyenaDNAError(f"{source}: a released HyenaDNA config needs a 'layer' dict")
    name = layer.get("_name_", "hyena")
    if name != "hyena":
        raise HyenaDNAError(f"{source}: layer type {name!r} is not supported (only 'hyena')")
    if values.get("attn_layer_idx"):
        raise HyenaDNAError(f"{source}: attention layers (attn_layer_idx) are not supported")
    fields: dict[str, Any] = {}
    unknown = []
    for part, table in ((values, _RELEASED_TOP), (layer, _RELEASED_LAYER)):
        for key, value in part.items():
            if key in _RELEASED_UNSUPPORTED and value not in (None, _RELEASED_UNSUPPORTED[key]):
                raise HyenaDNAError(f"{source}: {key}={value!r} is not supported by this model")
            if key in table:
                fields[table[key]] = value
            elif key not in _RELEASED_IGNORED and key not in _RELEASED_UNSUPPORTED:
                unknown.append(key)
    if unknown:
        warnings.warn(f"{source}: ignoring unknown released config keys {sorted(unknown)}", stacklevel=3)
    init = values.get("initializer_cfg") or {}
    if "initializer_range" in init:
        fields["initializer_range"] = init["initializer_range"]
    fields["learn_pos_emb"] = bool(layer.get("lr_pos_emb", 1e-5))  # z is a parameter iff its lr != 0
    return HyenaConfig(**fields)


_KEY_RULES = [  # (released key pattern after the 'model.' prefix, our key template)
    (r"backbone\.embeddings\.word_embeddings\.weight", "token_embedding.weight"),
    (r"backbone\.ln_f\.(weight|bias)", r"final_norm.\1"),
    (r"backbone\.layers\.(\d+)\.(norm1|norm2)\.(weight|bias)", r"blocks.\1.\2.\3"),
    (r"backbone\.layers\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"blocks.\1.mlp.\2.\3"),
    (r"backbone\.layers\.(\d+)\.mixer\.(in_proj|out_proj)\.(weight|bias)", r"blocks.\1.mixer.\2.\3"),
    (r"backbone\.layers\.(\d+)\.mixer\.short_filter\.(weight|bias)", r"blocks.\1.mixer.short_conv.\2"),
    (r"backbone\.layers\.(\d+)\.mixer\.filter_fn\.bias", r"blocks.\1.mixer.d_skip"),
]
_FILTER_MLP = re.compile(r"backbone\.layers\.(\d+)\.mixer\.filter_fn\.implicit_filter\.(\d+)\.(weight|bias|freq)")
_FILTER_BUFFER = re.compile(r"backbone\.layers\.(\d+)\.mixer\.filter_fn\.(pos_emb\.z|pos_emb\.t|modulation\.deltas)")


def _released_state_dict(checkpoint: Any, source: Path) -> dict[str, torch.Tensor]:
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise HyenaDNAError(f"{source}: no state_dict in this checkpoint")
    out = {}
    for key, value in state.items():
        if not (isinstance(key, str) and key.startswith("model.")):
            continue  # torchmetrics state, loss buffers: not part of the model
        if not isinstance(value, torch.Tensor):
            raise HyenaDNAError(f"{source}: entry {key} is not a tensor")
        key = key.removeprefix("model.").replace(".mixer.layer.", ".mixer.").replace(".mlp.layer.", ".mlp.")
        out[key] = value
    if not out:
        raise HyenaDNAError(f"{source}: no 'model.' weights in this checkpoint")
    return out


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.float().cpu(), b.float().cpu(), rtol=1e-5, atol=1e-6)


def translate_released_state(
    released: dict[str, torch.Tensor], config: HyenaConfig, source: Path
) -> dict[str, torch.Tensor]:
    """Map released keys (``model.`` prefix removed) to ours, checking what is dropped.

    Sets ``config.store_pos_emb`` when a stored positional embedding differs in any bit from
    the one this machine computes (it was trained, or rounded differently), so that the
    imported model reproduces the checkpoint's numbers exactly.
    """
    ours: dict[str, torch.Tensor] = {}
    freqs: dict[str, torch.Tensor] = {}
    z_stored: dict[str, torch.Tensor] = {}
    z_ref, t_ref = positional_embedding(config.l_max, config.emb_dim)
    deltas_ref = decay_rates(config.filter_channels, config.fast_decay_pct, config.slow_decay_pct, config.decay_target)
    for key, value in released.items():
        if key == "lm_head.weight":
            embedding = released.get("backbone.embeddings.word_embeddings.weight")
            if embedding is None or not _close(value, embedding):
                raise HyenaDNAError(f"{source}: lm_head.weight is not tied to the embedding")
            continue
        if m := _FILTER_MLP.fullmatch(key):
            layer, index, kind = m.groups()
            prefix = f"blocks.{layer}.mixer.filter"
            if kind == "freq":  # one tensor saved under every Sin's key
                if prefix in freqs and not torch.equal(freqs[prefix], value):
                    raise HyenaDNAError(f"{source}: {key} differs from the layer's other Sin frequencies")
                freqs[prefix] = value
                ours[f"{prefix}.freq"] = value
            else:
                ours[f"{prefix}.mlp.{int(index) // 2}.{kind}"] = value
            continue
        if m := _FILTER_BUFFER.fullmatch(key):
            layer, name = m.groups()
            value = value.reshape(-1, value.shape[-1])
            if name == "pos_emb.z":
                z_stored[f"blocks.{layer}.mixer.filter.z"] = value
            else:
                expected = t_ref if name == "pos_emb.t" else deltas_ref[None, :]
                if not _close(value, expected):
                    raise HyenaDNAError(
                        f"{source}: model.{key} differs from the value the config implies; the config "
                        "does not describe these weights"
                    )
            continue
        for pattern, template in _KEY_RULES:
            if re.fullmatch(pattern, key):
                ours[re.sub(pattern, template, key)] = value
                break
        else:
            raise HyenaDNAError(f"{source}: unexpected weight model.{key} in a released checkpoint")
    if config.learn_pos_emb and len(z_stored) != config.n_layer:
        raise HyenaDNAError(f"{source}: the filters' positional embeddings (pos_emb.z) are missing")
    if not config.learn_pos_emb and z_stored:
        config.store_pos_emb = not all(torch.equal(z.cpu(), z_ref) for z in z_stored.values())
    if config.learn_pos_emb or config.store_pos_emb:
        ours.update(z_stored)
    return ours


def import_released(
    model_class: type[HyenaDNA], path: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
) -> HyenaDNA:
    """Load a released HyenaDNA checkpoint folder (``config.json`` + ``weights.ckpt``) as a ``model_class``.

    The checkpoint is unpickled with a restricted unpickler (see :mod:`hyenadna.io.safe_pickle`).
    """
    folder = Path(path)
    config_path = folder / CONFIG_NAME
    try:
        values = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HyenaDNAError(f"cannot read released config {config_path}: {exc}") from exc
    config = config_from_released(values, source=str(config_path))
    weights_path = folder / RELEASED_WEIGHTS_NAME
    released = _released_state_dict(safe_torch_load(weights_path, map_location=map_location), weights_path)
    check_finite(released, weights_path)  # before translation, whose consistency checks would misname NaN
    state = translate_released_state(released, config, weights_path)
    config = HyenaConfig.from_dict({**config.to_dict(), **overrides}, source="overrides")
    return _build(model_class, config, state, weights_path)


def import_hf(
    model_class: type[HyenaDNA], path: str | os.PathLike, map_location: str | torch.device = "cpu", **overrides: Any
) -> HyenaDNA:
    """Load a folder in the Hugging Face port's layout (``-hf`` repositories: flat
    ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``, the latter through the
    restricted unpickler) as a ``model_class``; see :mod:`hyenadna.io.hf_port`."""
    folder = Path(path)
    values = read_json_object(folder / CONFIG_NAME, "model config")
    config = config_from_hf(values, source=str(folder / CONFIG_NAME))
    weights = folder / WEIGHTS_NAME
    if weights.exists():
        try:
            state = load_file(weights, device=str(map_location))
        except (SafetensorError, OSError) as exc:
            raise HyenaDNAError(f"{weights}: cannot read weights: {exc}") from exc
    elif (folder / HF_PICKLE_NAME).exists():
        weights = folder / HF_PICKLE_NAME
        state = safe_torch_load(weights, map_location=map_location)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise HyenaDNAError(f"{weights}: not a state dict of tensors")
    else:
        raise HyenaDNAError(f"{folder}: a Hugging Face HyenaDNA folder needs {WEIGHTS_NAME} or {HF_PICKLE_NAME}")
    check_finite(state, weights)
    released = released_keys(state, config, train_freq=values.get("train_freq", True))
    ours = translate_released_state(released, config, weights)
    config = HyenaConfig.from_dict({**config.to_dict(), **overrides}, source="overrides")
    return _build(model_class, config, ours, weights)
