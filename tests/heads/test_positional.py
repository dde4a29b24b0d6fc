"""The positional head: a linear layer on every position's state, against a plain reference
(padding on either side, shorter inputs), its length limit, saving, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.data.tokenizer import CharacterTokenizer, reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.heads.task_model import SequenceModel

SEQS = ["ACGTTGCAAGGT", "TTGACCANGTACGATCGA", "GCGCAT", "ATATATCGCGNNATGG"]
LENGTH = 20


def positional_model(rc: bool = False) -> SequenceModel:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig(d_model=8, n_layer=2, l_max=32, residual_in_fp32=False))
    head = HeadConfig("multiclass", ["a", "b", "c"], kind="positional", rc_conjoin=rc, train_length=LENGTH)
    model = SequenceModel(backbone, head)
    torch.nn.init.normal_(model.head.weight, std=0.5)
    return model.double().eval()


def reference_logits(model: SequenceModel, seq: str) -> np.ndarray:
    """The unpadded sequence's states, zero-filled to the head's length, times the weights."""
    ids = torch.as_tensor(CharacterTokenizer().encode_bases(seq))[None]
    with torch.no_grad():
        states = model.backbone.hidden_states(ids)[0].double().numpy()
    flat = np.zeros((LENGTH, states.shape[1]))
    flat[: len(seq)] = states
    weight, bias = model.head.weight.detach().double().numpy(), model.head.bias.detach().double().numpy()
    return weight @ flat.reshape(-1) + bias


@pytest.mark.parametrize("side", ["right", "left"])
def test_logits_read_each_position_from_the_first_base(side):
    model = positional_model()
    batch = CharacterTokenizer(padding_side=side)(SEQS)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
    for seq, row in zip(SEQS, logits):
        np.testing.assert_allclose(row, reference_logits(model, seq), rtol=1e-10, atol=1e-12)


def test_conjoined_positional_logits_average_the_strands_and_round_trip(tmp_path):
    model, single = positional_model(rc=True), positional_model()
    batch = CharacterTokenizer()(SEQS)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
    for seq, row in zip(SEQS, logits):
        both = reference_logits(single, seq) + reference_logits(single, reverse_complement(seq))
        np.testing.assert_allclose(row, both / 2, rtol=1e-10, atol=1e-12)
    model.save_pretrained(tmp_path / "m")
    loaded = load_task_model(tmp_path / "m").double()
    assert loaded.max_length == LENGTH
    np.testing.assert_allclose(predict_sequences(loaded, SEQS), predict_sequences(model, SEQS), rtol=1e-6)


def test_longer_inputs_and_missing_lengths_are_refused_by_name():
    model = positional_model()
    with pytest.raises(HyenaDNAError, match=f"sequence 0 has {LENGTH + 1} bases; the model takes 1 to {LENGTH}"):
        predict_sequences(model, ["A" * (LENGTH + 1)])
    batch = CharacterTokenizer()(["A" * (LENGTH + 1)])
    with pytest.raises(HyenaDNAError, match="longer than the positional head's"):
        model(batch["input_ids"], batch["attention_mask"])
    with pytest.raises(HyenaDNAError, match="train_length"):
        SequenceModel(model.backbone, HeadConfig("multiclass", ["a", "b"], kind="positional"))
    with pytest.raises(HyenaDNAError, match="train_length"):
        SequenceModel(model.backbone, HeadConfig("multiclass", ["a", "b"], kind="positional", train_length=33))
