"""Loading models, heads, tilings and checkpoints under hostile input (issue 32, findings 2-7):
one clean HyenaDNAError naming the file, field or value, never a traceback or a silent NaN."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hyena_reference import make_released_state, released_config
from released_folders import hf_folder, write_released
from safetensors.torch import load_file, save_file

import hyenadna
from hyenadna import CharacterTokenizer, HyenaConfig, HyenaDNA, HyenaDNAError, Tiling
from hyenadna.cli import main
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.heads.task_model import SequenceModel
from hyenadna.training.trainer import resume_checkpoint


def tiny_backbone(l_max: int = 64) -> HyenaDNA:
    torch.manual_seed(0)
    return HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=l_max)).eval()


def poison(path: Path, key: str | None = None, value: float = float("nan")) -> str:
    """Set one element of a tensor of a safetensors file (the first, or ``key``) to ``value``."""
    state = load_file(str(path))
    key = key or sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[key].view(-1)[0] = value
    save_file(state, str(path))
    return key


def test_load_checks_dtype_and_device():
    """Finding 2: load(dtype=torch.int64 | "float16" | "bogus") tracebacked, complex64 failed
    later; load(device="cuda") without CUDA failed deep in a run."""
    for dtype in (torch.int64, torch.complex64, "bogus", "int8"):
        with pytest.raises(HyenaDNAError, match="model dtype must be one of"):
            hyenadna.load("tiny-1k", dtype=dtype, n_layer=1, d_model=16)
    assert hyenadna.load("tiny-1k", dtype="float16", n_layer=1, d_model=16).dtype == torch.float16
    assert hyenadna.load("tiny-1k", dtype="torch.float64", n_layer=1, d_model=16).dtype == torch.float64
    with pytest.raises(HyenaDNAError, match="unknown device"):
        hyenadna.load("tiny-1k", device="gpu0", n_layer=1, d_model=16)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert hyenadna.load("tiny-1k", device="auto", n_layer=1, d_model=16).device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(HyenaDNAError, match="no CUDA device"):
            hyenadna.load("tiny-1k", device="cuda", n_layer=1, d_model=16)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, value):
    """Finding 2: a safetensors file whose values are NaN/inf loaded without a word (embed and
    score returned NaN)."""
    tiny_backbone().save_pretrained(tmp_path / "m")
    key = poison(tmp_path / "m" / "model.safetensors", value=value)
    with pytest.raises(HyenaDNAError, match=f"model.safetensors: weight {key} holds 1 NaN or infinite"):
        hyenadna.load(tmp_path / "m")


def test_non_finite_weights_are_refused_in_released_and_hf_formats(tmp_path):
    """Finding 2, every format: a released weights.ckpt and the Hugging Face port's layout."""
    config = released_config(d_model=16, n_layer=1, l_max=64)
    state = make_released_state(config, seed=0)
    key = "model.backbone.ln_f.weight"
    state[key] = state[key].clone()
    state[key][0] = float("nan")
    write_released(tmp_path / "released", config, state)
    with pytest.raises(HyenaDNAError, match="weights.ckpt: weight backbone.ln_f.weight holds"):
        hyenadna.load(tmp_path / "released")
    hf_folder(tmp_path / "hf", config, state)
    with pytest.raises(HyenaDNAError, match="model.safetensors: weight hyena.backbone.ln_f.weight holds"):
        hyenadna.load(tmp_path / "hf")


def finetuned(folder: Path, labels=("a", "b", "c"), l_max: int = 64) -> SequenceModel:
    model = SequenceModel(tiny_backbone(l_max), HeadConfig("multiclass", list(labels), dropout=0.0))
    torch.nn.init.normal_(model.head.weight, std=2.0)
    model.save_pretrained(folder)
    return model


def test_task_model_head_weights_are_checked(tmp_path):
    """Findings 2 and 4: NaN head weights loaded silently; a folder without head.safetensors
    tracebacked in predict."""
    finetuned(tmp_path / "m")
    poison(tmp_path / "m" / "head.safetensors", "weight")
    with pytest.raises(HyenaDNAError, match="head.safetensors: weight weight holds"):
        load_task_model(tmp_path / "m")
    (tmp_path / "m" / "head.safetensors").unlink()
    with pytest.raises(HyenaDNAError, match=f"{tmp_path / 'm'}: no head.safetensors"):
        load_task_model(tmp_path / "m")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_length": -3}, "train_length must be at least 1"),
        ({"train_length": 2.5}, "train_length must be a whole number"),
        ({"labels": []}, "at least one label"),
        ({"labels": ["a", "a"]}, "labels must be distinct"),
        ({"labels": "ab"}, "labels must be a list"),
        ({"task": "bogus"}, "task must be one of"),
        ({"kind": "bogus"}, "head kind must be one of"),
        ({"dropout": 1.5}, "dropout must lie in"),
        ({"dropout": 1}, "dropout must be below 1"),
        ({"layer": "last"}, "layer must be a whole number"),
        ({"rc_conjoin": "yes"}, "rc_conjoin must be true or false"),
        ({"bidirectional": 1}, "bidirectional must be true or false"),
        ({"kind": "likelihood", "bidirectional": True}, "likelihood head reads causal states"),
        ({"colour": "red"}, "not a valid task file"),
    ],
)
def test_task_json_fields_are_validated(tmp_path, change, message):
    """Finding 5: task.json with train_length -3 (and other bad fields) was accepted."""
    finetuned(tmp_path / "m")
    task = tmp_path / "m" / "task.json"
    task.write_text(json.dumps({**json.loads(task.read_text()), **change}))
    with pytest.raises(HyenaDNAError, match=message) as exc_info:
        load_task_model(tmp_path / "m")
    assert str(task) in str(exc_info.value)


def test_tiling_refuses_wrong_types():
    """Finding 3: Tiling("100") and Tiling(100.5, 50) tracebacked."""
    for args in [("100",), (100.5, 50), (100, "50"), (True,), (100, 50, 3)]:
        with pytest.raises(HyenaDNAError, match="tiling"):
            Tiling(*args)
    assert Tiling(np.int64(100)).stride == 50


def test_tiled_max_combines_logits_before_the_softmax(tmp_path):
    """Finding 3: --tiling.combine max took each class's maximum separately (probabilities
    summed to 1.025); now the softmax of the windows' largest logits."""
    model = finetuned(tmp_path / "m").eval()
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 300))
    tiling = Tiling(window=64, stride=32, combine="max")
    got = predict_sequences(model, [seq, "ACGTAC"], tiling=tiling)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)
    windows = [seq[s.start : s.end] for s in tiling.spans(len(seq))]
    ids = torch.stack([torch.as_tensor(CharacterTokenizer().encode_bases(w)) for w in windows])
    with torch.no_grad():
        logits = model(ids)
    np.testing.assert_allclose(got[0], logits.amax(0).softmax(-1).numpy(), atol=1e-6)
    assert not np.allclose(got[0], logits.softmax(-1).amax(0).numpy(), atol=1e-3)  # the old, wrong way


def test_loss_checks_counts_before_loading(tmp_path, capsys):
    """Finding 6: loss --batch_size 0 tracebacked."""
    fasta = tmp_path / "x.fa"
    fasta.write_text(">r\nACGTACGTAC\n")
    for option, value in [("--batch_size", "0"), ("--batch_size", "-2"), ("--window", "1"), ("--seed", "-1")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["loss", "--fasta", str(fasta), "--model", "tiny-1k", option, value])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and option in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["loss", "--fasta", str(tmp_path / "missing.fa"), "--model", "tiny-1k"])
    assert "FASTA file not found" in capsys.readouterr().err


class _RunsCode:
    """Unpickling this calls os.system: a checkpoint that would run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_resume_checkpoint_is_refused_without_running_code(tmp_path):
    """Finding 7: a malicious last.ckpt with --resume was refused by weights_only, but as a
    traceback from inside the fit; now one error naming the file, and nothing runs."""
    marker = tmp_path / "ran"
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 0, "payload": _RunsCode(marker)}, last)
    with pytest.raises(HyenaDNAError, match=r"cannot resume: .*last.ckpt was refused .*system"):
        resume_checkpoint(tmp_path / "run", True)
    assert not marker.exists()
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 1, "hyper_parameters": {"lr": 1e-3}}, good)
    assert resume_checkpoint(tmp_path / "run", str(good)) == str(good)
