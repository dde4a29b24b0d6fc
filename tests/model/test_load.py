"""Models load as Hugging Face users expect: eval mode, device and dtype, exact padded batches
through ``attention_mask``, the tokenizer's ``return_tensors``; the Hugging Face port's ``-hf``
layout and hub ids, from a hub cache built here (no network)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hyena_reference import make_released_state, released_config
from released_folders import hf_folder, write_released

import hyenadna
from hyenadna import CharacterTokenizer, HyenaDNAError

SEQS = ["ACGTTGCAACGGTA", "GATTACA", "CCGGTTAAACGTACGTAGCTAGCT"]


def test_load_returns_eval_mode_with_device_and_dtype(tmp_path):
    model = hyenadna.load("tiny-1k")
    assert not model.training and model.device == torch.device("cpu") and model.dtype == torch.float32
    ids = torch.randint(7, 11, (2, 50))
    with torch.no_grad():
        assert torch.equal(model(ids), model(ids))  # no dropout
    model.save_pretrained(tmp_path / "m")
    again = hyenadna.load(tmp_path / "m", dtype=torch.float64, device="cpu")
    assert not again.training and again.dtype == torch.float64
    assert not hyenadna.HyenaDNA.from_pretrained(tmp_path / "m").training


@pytest.mark.parametrize("side", ["left", "right"])
def test_attention_mask_makes_padded_batches_exact(side):
    torch.manual_seed(0)
    model = hyenadna.load("tiny-1k", dtype=torch.float64)
    batch = CharacterTokenizer(padding_side=side)(SEQS)
    with torch.no_grad():
        padded = model.hidden_states(batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = model(batch["input_ids"], attention_mask=batch["attention_mask"])
        for i, seq in enumerate(SEQS):
            alone = CharacterTokenizer()([seq])["input_ids"]
            mask = batch["attention_mask"][i]
            assert torch.allclose(padded[i][mask], model.hidden_states(alone)[0], rtol=0, atol=1e-12)
            assert torch.allclose(logits[i][mask], model(alone)[0], rtol=0, atol=1e-12)
            assert not padded[i][~mask].any()  # zeros at padding
    if side == "left":  # without the mask, left padding is read as tokens
        with torch.no_grad():
            unmasked = model.hidden_states(batch["input_ids"])
        assert not torch.allclose(unmasked[1][batch["attention_mask"][1]], padded[1][batch["attention_mask"][1]])


def test_attention_mask_must_be_one_run_per_row():
    model = hyenadna.load("tiny-1k")
    ids = torch.randint(7, 11, (1, 6))
    with pytest.raises(HyenaDNAError, match="contiguous"):
        model(ids, attention_mask=torch.tensor([[True, False, True, True, False, False]]))
    with pytest.raises(HyenaDNAError, match="shape"):
        model(ids, attention_mask=torch.ones(1, 5, dtype=torch.bool))


def test_tokenizer_return_tensors():
    tok = CharacterTokenizer()
    as_np = tok(SEQS[:2], return_tensors="np")
    as_lists = tok(SEQS[:2], return_tensors=None)
    as_pt = tok(SEQS[:2])
    assert isinstance(as_np["input_ids"], np.ndarray) and np.array_equal(as_np["input_ids"], as_pt["input_ids"].numpy())
    assert as_lists["input_ids"] == as_pt["input_ids"].tolist()
    assert as_lists["attention_mask"][1][0] is False  # left padding by default
    with pytest.raises(HyenaDNAError, match="return_tensors"):
        tok(SEQS, return_tensors="tf")


@pytest.mark.parametrize("pickle", [False, True])
def test_hf_port_layout_gives_the_released_layouts_numbers(tmp_path, pickle):
    config = released_config(d_model=32, n_layer=2, l_max=256)
    state = make_released_state(config, seed=7, wrap_layers=False)
    released = hyenadna.load(write_released(tmp_path / "released", config, state), modulation_shift=0.05)
    ported = hyenadna.load(hf_folder(tmp_path / "hf", config, state, pickle))
    assert ported.config.modulation_shift == 0.05 and ported.config.l_max == 256
    ids = torch.randint(7, 11, (2, 200))
    with torch.no_grad():
        assert torch.equal(ported(ids), released(ids))


def hub_cache(root: Path, repo_id: str, folder: Path, commit: str = "a" * 40) -> Path:
    """A huggingface_hub cache holding ``folder``'s files as ``repo_id`` at ``main``."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return root


def test_hub_id_loads_from_the_cache_and_names_what_is_missing(tmp_path):
    config = released_config(d_model=32, n_layer=2, l_max=256)
    state = make_released_state(config, seed=8, wrap_layers=False)
    local = hyenadna.load(hf_folder(tmp_path / "hf", config, state))
    cache = hub_cache(tmp_path / "hub", "LongSafari/tiny-test-hf", tmp_path / "hf")
    model = hyenadna.load("LongSafari/tiny-test-hf", cache_dir=cache, local_files_only=True)
    ids = torch.randint(7, 11, (1, 100))
    with torch.no_grad():
        assert torch.equal(model(ids), local(ids)) and not model.training
    with pytest.raises(HyenaDNAError, match="'LongSafari/absent-hf'"):
        hyenadna.load("LongSafari/absent-hf", cache_dir=cache, local_files_only=True)
    with pytest.raises(HyenaDNAError, match="revision 'v9'"):
        hyenadna.load("LongSafari/tiny-test-hf", revision="v9", cache_dir=cache, local_files_only=True)


def test_hub_offline_mode_and_cache_variables_are_honoured(tmp_path):
    config = released_config(d_model=32, n_layer=1, l_max=128)
    hf_folder(tmp_path / "hf", config, make_released_state(config, seed=9, wrap_layers=False))
    cache = hub_cache(tmp_path / "hub", "owner/model-hf", tmp_path / "hf")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    code = "import hyenadna; m = hyenadna.load('owner/model-hf'); print(m.config.n_layer, m.training)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "False"]


def test_task_head_logits_do_not_depend_on_the_batch():
    """A fine-tuned head sees each sequence as it is alone, whatever shares its padded batch."""
    from hyenadna.heads.config import HeadConfig
    from hyenadna.heads.task_model import SequenceModel

    torch.manual_seed(0)
    head = HeadConfig(task="multiclass", labels=["a", "b"], rc_conjoin=True)
    model = SequenceModel(hyenadna.load("tiny-1k", dtype=torch.float64), head).double().eval()
    batch = CharacterTokenizer(padding_side="left")(SEQS)
    with torch.no_grad():
        together = model(batch["input_ids"], batch["attention_mask"])
        for i, seq in enumerate(SEQS):
            alone = CharacterTokenizer()([seq])
            assert torch.allclose(together[i], model(alone["input_ids"], alone["attention_mask"])[0], atol=1e-12)
