"""A float64 HyenaDNA forward pass over a *released-format* state dict.

It reads the released key names directly and computes the implicit filters, the channel
layout, the norms and the MLP itself, written from the HyenaDNA paper and training code, so it
checks the key translation and the layout independently of the package's loading code; the
operator's own math is the package's one plain reference,
:func:`hyenadna.ops.reference.hyena_operator_ref` (tests/ops/test_paths.py checks that against a
direct causal sum). Also builds released-format fixtures (keys, shapes, shared Sin frequency)
from random weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hyenadna.ops.reference import hyena_operator_ref


def released_config(d_model=32, n_layer=2, l_max=130, order=2, lr_pos_emb=0.0, **layer_extra) -> dict:
    """A config.json in the released layout (nested ``layer`` dict)."""
    return {
        "d_model": d_model,
        "n_layer": n_layer,
        "d_inner": 4 * d_model,
        "vocab_size": 12,
        "resid_dropout": 0.0,
        "embed_dropout": 0.1,
        "fused_mlp": False,
        "fused_dropout_add_ln": True,
        "checkpoint_mixer": True,
        "checkpoint_mlp": True,
        "residual_in_fp32": True,
        "pad_vocab_size_multiple": 8,
        "layer": {
            "_name_": "hyena",
            "emb_dim": 5,
            "filter_order": 64,
            "local_order": 3,
            "l_max": l_max,
            "modulate": True,
            "w": 10,
            "lr": 6e-4,
            "wd": 0.0,
            "lr_pos_emb": lr_pos_emb,
            **({"order": order} if order != 2 else {}),
            **layer_extra,
        },
    }


def _pos_emb(l_max: int, emb_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(l_max, dtype=torch.float64) / (l_max - 1)
    bands = (emb_dim - 1) // 2
    freqs = torch.tensor([1e-4 + i * (bands - 1 - 1e-4) / max(bands - 1, 1) for i in range(bands)], dtype=torch.float64)
    angle = 2 * math.pi * torch.arange(l_max, dtype=torch.float64)[:, None] / l_max * freqs[None, :]
    z = torch.cat([t[:, None], torch.cos(angle), -torch.sin(angle)], dim=1)
    return z[None].float(), t[None, :, None].float()


def make_released_state(
    config: dict, seed: int, wrap_layers: bool = True, learned_z: bool = False, filter_scale: float = 1.0
) -> dict:
    """Random weights under the released key names and shapes (``model.`` prefix included).

    ``wrap_layers`` uses the ``.mixer.layer.`` / ``.mlp.layer.`` keys of a run trained with
    gradient checkpointing. The Sin frequency is one tensor stored under three keys, and the
    LM head is the embedding tensor itself, as in a tied model's state dict.

    Weights have the scales of a trained network: unit-variance activations (fan-in scaled
    projections) and filter-MLP weights like trained HyenaDNA filters (``filter_scale=1``).
    Much larger random weights make a network whose float32 outputs move by more than 1e-5
    when its weights are rounded to float32 (Sin(10 x) alone multiplies errors by about
    10 |W| sqrt(width) per layer), which no float32 implementation, the reference's included,
    can match to 1e-5; tests of the exact math at any scale run in float64.
    """
    fs = filter_scale
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    d, n, lay = config["d_model"], config["n_layer"], config["layer"]
    order = lay.get("order", 2)
    width, channels, fo, l_max = d * (order + 1), d * (order - 1), lay["filter_order"], lay["l_max"]
    vocab = -(-config["vocab_size"] // config["pad_vocab_size_multiple"]) * config["pad_vocab_size_multiple"]
    z, t = _pos_emb(l_max, lay["emb_dim"])
    max_decay, min_decay = math.log(1e-2) / 0.3, math.log(1e-2) / 1.5
    deltas = torch.tensor(
        [min_decay + i * (max_decay - min_decay) / (channels - 1) for i in range(channels)], dtype=torch.float64
    ).float()[None, None]
    embedding = rnd(vocab, d, scale=1.0)
    sd = {"model.backbone.embeddings.word_embeddings.weight": embedding}
    for i in range(n):
        pre = f"model.backbone.layers.{i}"
        mixer = f"{pre}.mixer.layer" if wrap_layers else f"{pre}.mixer"
        mlp = f"{pre}.mlp.layer" if wrap_layers else f"{pre}.mlp"
        freq = 10 + rnd(1, fo, scale=0.5)
        sd.update({
            f"{pre}.norm1.weight": 1 + rnd(d), f"{pre}.norm1.bias": rnd(d),
            f"{pre}.norm2.weight": 1 + rnd(d), f"{pre}.norm2.bias": rnd(d),
            f"{mixer}.in_proj.weight": rnd(width, d, scale=d**-0.5), f"{mixer}.in_proj.bias": rnd(width),
            f"{mixer}.out_proj.weight": rnd(d, d, scale=d**-0.5), f"{mixer}.out_proj.bias": rnd(d),
            f"{mixer}.short_filter.weight": rnd(width, 1, lay["local_order"], scale=0.5),
            f"{mixer}.short_filter.bias": rnd(width),
            f"{mixer}.filter_fn.bias": rnd(channels, scale=1.0),
            f"{mixer}.filter_fn.pos_emb.z": z + rnd(*z.shape, scale=0.1) if learned_z else z.clone(),
            f"{mixer}.filter_fn.pos_emb.t": t.clone(),
            f"{mixer}.filter_fn.modulation.deltas": deltas.clone(),
            f"{mixer}.filter_fn.implicit_filter.0.weight": rnd(fo, lay["emb_dim"], scale=fs * 0.3),
            f"{mixer}.filter_fn.implicit_filter.0.bias": rnd(fo, scale=fs * 0.1),
            f"{mixer}.filter_fn.implicit_filter.2.weight": rnd(fo, fo, scale=fs * 0.05),
            f"{mixer}.filter_fn.implicit_filter.2.bias": rnd(fo, scale=fs * 0.1),
            f"{mixer}.filter_fn.implicit_filter.4.weight": rnd(fo, fo, scale=fs * 0.05),
            f"{mixer}.filter_fn.implicit_filter.4.bias": rnd(fo, scale=fs * 0.1),
            f"{mixer}.filter_fn.implicit_filter.6.weight": rnd(channels, fo, scale=fs * 0.05),
            f"{mixer}.filter_fn.implicit_filter.1.freq": freq,
            f"{mixer}.filter_fn.implicit_filter.3.freq": freq,
            f"{mixer}.filter_fn.implicit_filter.5.freq": freq,
            f"{mlp}.fc1.weight": rnd(4 * d, d, scale=d**-0.5), f"{mlp}.fc1.bias": rnd(4 * d),
            f"{mlp}.fc2.weight": rnd(d, 4 * d, scale=(4 * d) ** -0.5), f"{mlp}.fc2.bias": rnd(d),
        })  # fmt: skip
    sd["model.backbone.ln_f.weight"] = 1 + rnd(d)
    sd["model.backbone.ln_f.bias"] = rnd(d)
    sd["model.lm_head.weight"] = embedding
    return sd


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def reference_hidden_states(sd: dict, config: dict, ids: torch.Tensor, shift: float = 0.0) -> list[torch.Tensor]:
    """Float64 hidden states: embedding, residual stream after each inner block, final norm."""
    p = {k.removeprefix("model.").replace(".mixer.layer.", ".mixer.").replace(".mlp.layer.", ".mlp."): v.double()
         for k, v in sd.items()}  # fmt: skip
    d, n, lay = config["d_model"], config["n_layer"], config["layer"]
    order = lay.get("order", 2)
    length = ids.shape[1]
    hidden = p["backbone.embeddings.word_embeddings.weight"][ids]
    states, residual = [hidden], None
    for i in range(n):
        pre = f"backbone.layers.{i}"
        residual = hidden if residual is None else hidden + residual
        x = _layer_norm(residual, p[f"{pre}.norm1.weight"], p[f"{pre}.norm1.bias"])
        m, f = f"{pre}.mixer", f"{pre}.mixer.filter_fn"
        h = p[f"{f}.pos_emb.z"][0, :length]
        freq = p[f"{f}.implicit_filter.1.freq"]
        for j in (0, 2, 4):
            h = torch.sin(freq * (h @ p[f"{f}.implicit_filter.{j}.weight"].T + p[f"{f}.implicit_filter.{j}.bias"]))
        h = h @ p[f"{f}.implicit_filter.6.weight"].T  # (L, C)
        t = p[f"{f}.pos_emb.t"][0, :length]  # (L, 1)
        h = h * (torch.exp(-t * p[f"{f}.modulation.deltas"][0].abs()) + shift)
        steps = [torch.arange(d) * (order - 1) + step for step in range(order - 1)]  # released layout "(v o)"
        x = hyena_operator_ref(
            x,
            (p[f"{m}.in_proj.weight"], p[f"{m}.in_proj.bias"]),
            (p[f"{m}.short_filter.weight"], p[f"{m}.short_filter.bias"]),
            torch.stack([h[:, cols].T for cols in steps]),
            torch.stack([p[f"{f}.bias"][cols] for cols in steps]),
            (p[f"{m}.out_proj.weight"], p[f"{m}.out_proj.bias"]),
            order,
        )
        residual = x + residual
        x = _layer_norm(residual, p[f"{pre}.norm2.weight"], p[f"{pre}.norm2.bias"])
        x = F.gelu(x @ p[f"{pre}.mlp.fc1.weight"].T + p[f"{pre}.mlp.fc1.bias"], approximate="tanh")
        hidden = x @ p[f"{pre}.mlp.fc2.weight"].T + p[f"{pre}.mlp.fc2.bias"]
        if i < n - 1:
            states.append(hidden + residual)
    states.append(_layer_norm(hidden + residual, p["backbone.ln_f.weight"], p["backbone.ln_f.bias"]))
    return states


def max_relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|, in float64."""
    expected = expected.double()
    return float((actual.double() - expected).abs().max() / expected.abs().max())
