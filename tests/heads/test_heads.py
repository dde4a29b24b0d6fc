"""Every head kind behind one interface (hyenadna.heads.base.Head): the folder format older
releases wrote (head.safetensors and task.json keys), a reload that gives the same logits bit for
bit, the kind-blind hook that finishes a head from its training targets, and options declared once."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.heads.base import task_loss
from hyenadna.heads.config import HEADS, HeadConfig, HeadOptions
from hyenadna.heads.task_model import SequenceModel

SEQS = ["ACGTTGCAAGGT", "TTGACCANGTACGATCGA", "GCGCAT", "ATATATCGCGNNATGG"]
# the format as the code before heads became classes wrote it: these names are on users' disks
HEAD_FILE_KEYS = {
    "linear": ["bias", "weight"],
    "likelihood": ["bias", "delta", "log_prior", "shared"],
    "positional": ["bias", "weight"],
}
TASK_JSON_KEYS = ["task", "labels", "pooling", "layer", "rc_conjoin", "dropout", "train_length", "kind"]
HEAD_OPTIONS = ["kind", "pooling", "layer", "rc_conjoin", "dropout"]  # --head.* and the YAML recipes' head:


def model_of(kind: str, **options) -> SequenceModel:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig.from_preset("tiny-1k", n_layer=1, d_model=16, l_max=32))
    head = HeadConfig("multiclass", ["a", "b", "c"], kind=kind, train_length=20, **options)
    model = SequenceModel(backbone, head)
    for weight in model.head.parameters():  # outputs that differ by class
        torch.nn.init.normal_(weight, std=0.5)
    return model.eval()


def test_the_registry_holds_every_kind():
    assert sorted(HEADS) == sorted(HEAD_FILE_KEYS) and all(cls.kind == kind for kind, cls in HEADS.items())


@pytest.mark.parametrize("kind", list(HEAD_FILE_KEYS))
def test_each_kind_writes_the_old_format_and_reloads_bit_for_bit(kind, tmp_path):
    model = model_of(kind, rc_conjoin=True, pooling="max", dropout=0.0)
    model.save_pretrained(tmp_path)
    assert sorted(load_file(tmp_path / "head.safetensors")) == HEAD_FILE_KEYS[kind]
    saved = json.loads((tmp_path / "task.json").read_text())
    assert sorted(saved) == sorted(TASK_JSON_KEYS) and saved["kind"] == kind
    batch = CharacterTokenizer(padding_side="left")(SEQS)
    loaded = SequenceModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch), model(**batch))


def test_a_task_json_in_the_old_key_order_loads(tmp_path):
    model_of("linear").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "task.json").read_text())
    (tmp_path / "task.json").write_text(json.dumps({key: saved[key] for key in TASK_JSON_KEYS}, indent=2))
    assert SequenceModel.from_pretrained(tmp_path).head_config == model_of("linear").head_config


@pytest.mark.parametrize("kind", list(HEAD_FILE_KEYS))
def test_finishing_from_targets_needs_no_kind(kind):
    model = model_of(kind)
    before = {k: v.clone() for k, v in model.head.state_dict().items()}
    model.start_from_targets(np.array([0, 0, 0, 1]))
    after = model.head.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == (["log_prior"] if kind == "likelihood" else [])
    if kind == "likelihood":  # a class never seen counts half
        np.testing.assert_allclose(after["log_prior"].exp().numpy(), np.array([3, 1, 0.5]) / 4.5, rtol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "positional"])
def test_the_default_loss_is_the_tasks(kind):
    model = model_of(kind)
    batch = CharacterTokenizer()(SEQS)
    logits, target = model(**batch), torch.tensor([0, 2, 1, 2])
    assert torch.equal(
        model.training_loss(logits, target, batch["attention_mask"]), task_loss("multiclass", logits, target)
    )


def test_options_are_declared_once():
    assert [f.name for f in dataclasses.fields(HeadOptions)] == HEAD_OPTIONS
    assert sorted(f.name for f in dataclasses.fields(HeadConfig)) == sorted(TASK_JSON_KEYS)
    assert (
        HeadConfig(task="multiclass", labels=["a"], **dataclasses.asdict(HeadOptions(pooling="max"))).pooling == "max"
    )
