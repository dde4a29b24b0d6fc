"""Every head kind behind one interface (hyenadna.heads.base.Head): the folder format older
releases wrote (head.safetensors and task.json keys), a reload that gives the same logits bit for
bit, the kind-blind hook that finishes a head from its training targets, and options declared once."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.base import task_loss
from hyenadna.heads.config import HEADS, HeadConfig, HeadOptions
from hyenadna.heads.task_model import SequenceModel

SEQS = ["ACGTTGCAAGGT", "TTGACCANGTACGATCGA", "GCGCAT", "ATATATCGCGNNATGG"]
# the format each kind writes (linear, likelihood, positional: as the code before heads became
# classes wrote it): these names are on users' disks
HEAD_FILE_KEYS = {
    "linear": ["bias", "weight"],
    "likelihood": ["bias", "delta", "log_prior", "shared"],
    "positional": ["bias", "weight"],
    "conv": sorted(
        ["bias", "weight"]
        + [f"blocks.{i}.{k}" for i in (0, 4, 8) for k in ("bias", "weight")]
        + [f"blocks.{i}.{k}" for i in (1, 5, 9) for k in ("bias", "weight", "running_mean", "running_var")]
        + [f"blocks.{i}.num_batches_tracked" for i in (1, 5, 9)]
    ),
}
TASK_JSON_KEYS = ["task", "labels", "pooling", "layer", "rc_conjoin", "dropout", "train_length", "kind"]
# written since; a task.json without them loads with their defaults
NEW_KEYS = ["bidirectional", "hidden", "conv_channels", "conv_kernel"]
HEAD_OPTIONS = [
    "kind",
    "pooling",
    "layer",
    "rc_conjoin",
    "dropout",
    "bidirectional",
    "hidden",
    "conv_channels",
    "conv_kernel",
]  # --head.* and the YAML recipes' head:


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
    assert sorted(saved) == sorted(TASK_JSON_KEYS + NEW_KEYS) and saved["kind"] == kind
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


@pytest.mark.parametrize("kind", ["linear", "positional", "conv"])
def test_the_default_loss_is_the_tasks(kind):
    model = model_of(kind)
    batch = CharacterTokenizer()(SEQS)
    logits, target = model(**batch), torch.tensor([0, 2, 1, 2])
    assert torch.equal(
        model.training_loss(logits, target, batch["attention_mask"]), task_loss("multiclass", logits, target)
    )


def test_options_are_declared_once():
    assert [f.name for f in dataclasses.fields(HeadOptions)] == HEAD_OPTIONS
    assert sorted(f.name for f in dataclasses.fields(HeadConfig)) == sorted(TASK_JSON_KEYS + NEW_KEYS)
    assert (
        HeadConfig(task="multiclass", labels=["a"], **dataclasses.asdict(HeadOptions(pooling="max"))).pooling == "max"
    )


@pytest.mark.parametrize("kind", ["linear", "positional"])  # the conv head's: tests/heads/test_conv.py
def test_a_hidden_layer_is_gelu_between_the_features_and_the_output(kind, tmp_path):
    model = model_of(kind, hidden=6, dropout=0.0).double()
    batch = CharacterTokenizer(padding_side="left")(SEQS)
    with torch.no_grad():
        logits = model(**batch)
        hidden = model.backbone.hidden_states(batch["input_ids"], attention_mask=batch["attention_mask"])
        features = model.head.features(hidden.double(), batch["attention_mask"])
    weights = {k: v.numpy() for k, v in model.head.state_dict().items()}
    assert weights["hidden_layer.weight"].shape == (6, features.shape[1]) and weights["weight"].shape == (3, 6)
    pre = features.numpy() @ weights["hidden_layer.weight"].T + weights["hidden_layer.bias"]
    gelu = 0.5 * pre * (1 + np.vectorize(math.erf)(pre / math.sqrt(2)))
    np.testing.assert_allclose(logits.numpy(), gelu @ weights["weight"].T + weights["bias"], rtol=1e-10, atol=1e-12)
    model.save_pretrained(tmp_path)
    assert sorted(load_file(tmp_path / "head.safetensors")) == [
        "bias",
        "hidden_layer.bias",
        "hidden_layer.weight",
        "weight",
    ]
    with torch.no_grad():
        assert torch.equal(SequenceModel.from_pretrained(tmp_path).double().eval()(**batch), logits)


def test_without_a_hidden_layer_a_seeded_head_starts_as_it_always_did():
    """hidden: 0 draws no extra weights: a seed gives the head it gave before the option existed."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 3)
    torch.nn.init.normal_(layer.weight, std=0.02)
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig.from_preset("tiny-1k", n_layer=1, d_model=16, l_max=32))
    state = torch.get_rng_state()
    head = SequenceModel(backbone, HeadConfig("multiclass", ["a", "b", "c"])).head
    torch.set_rng_state(state)
    expected = torch.nn.Linear(16, 3)
    torch.nn.init.normal_(expected.weight, std=backbone.config.initializer_range)
    assert torch.equal(head.weight, expected.weight)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "likelihood", "hidden": 8}, "likelihood head has no hidden layer"),
        ({"hidden": -1}, "hidden must be at least 0"),
        ({"hidden": 2.5}, "hidden must be a whole number"),
    ],
)
def test_hidden_layer_refusals_name_the_option(options, message):
    with pytest.raises(HyenaDNAError, match=message):
        HeadConfig("multiclass", ["a", "b"], **options)
