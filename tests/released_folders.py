"""Folders in the layouts released HyenaDNA weights come in, written from a state dict: the
original Lightning checkpoint and the Hugging Face port's ``-hf`` layout (tests of loading
use both)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file


def write_released(folder: Path, config: dict, state: dict) -> Path:
    """A released HyenaDNA folder: config.json and a Lightning weights.ckpt as it was saved."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    full_state = {
        **state,
        "train_torchmetrics.perplexity.total": torch.tensor(12.5),
        "val_torchmetrics.num_tokens.count": torch.tensor(1024),
    }
    first = next(iter(state.values()))
    checkpoint = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.8.6",
        "state_dict": full_state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"current": {"completed": 3}}}},
        "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.9), "dirpath": "/ckpt"}},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros_like(first)}}, "param_groups": [{"lr": 6e-4}]}],
        "lr_schedulers": [{"last_epoch": 1200}],
        "hyper_parameters": OmegaConf.create({"model": config, "train": {"seed": 2222, "global_batch_size": 256}}),
    }
    torch.save(checkpoint, folder / "weights.ckpt")
    return folder


def hf_folder(folder: Path, config: dict, state: dict, pickle: bool = False) -> Path:
    """The Hugging Face port's layout of the same weights as a released checkpoint: a flat
    config and ``hyena.backbone.`` keys; safetensors keeps one copy of shared tensors, as
    transformers saves them (one Sin frequency per layer, no separate tied LM head)."""
    folder.mkdir(parents=True, exist_ok=True)
    layer = config["layer"]
    hf_config = {
        "architectures": ["HyenaDNAForCausalLM"], "model_type": "hyenadna", "d_model": config["d_model"],
        "n_layer": config["n_layer"], "d_inner": config["d_inner"], "vocab_size": config["vocab_size"],
        "max_seq_len": layer["l_max"], "emb_dim": layer["emb_dim"], "filter_order": layer["filter_order"],
        "hyena_order": 2, "short_filter_order": layer["local_order"], "num_inner_mlps": 2,
        "activation_freq": layer["w"], "train_freq": True, "use_bias": True, "embed_dropout": 0.1,
        "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "pad_vocab_size_multiple": 8,
        "tie_word_embeddings": True,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(hf_config))
    tensors = {}
    for key, value in state.items():
        name = "hyena." + key.removeprefix("model.")
        if key == "model.lm_head.weight" or (".freq" in key and ".implicit_filter.1." not in key):
            continue
        tensors[name] = value.clone().contiguous()
    if pickle:
        torch.save(tensors, folder / "pytorch_model.bin")
    else:
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
