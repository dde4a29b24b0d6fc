"""The positional head: a linear layer on every position's state, against a plain reference
(padding on either side, shorter inputs), its length limit, saving, and refusals; and its
one-position kin, the linear head with ``center`` pooling, against the same reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from head_states import head_states

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.data.tokenizer import CharacterTokenizer, reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.heads.task_model import SequenceModel

SEQS = ["ACGTTGCAAGGT", "TTGACCANGTACGATCGA", "GCGCAT", "ATATATCGCGNNATGG"]
LENGTH = 20


def positional_model(rc: bool = False, bidirectional: bool = False) -> SequenceModel:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig(d_model=8, n_layer=2, l_max=32, residual_in_fp32=False))
    head = HeadConfig(
        "multiclass",
        ["a", "b", "c"],
        kind="positional",
        rc_conjoin=rc,
        train_length=LENGTH,
        bidirectional=bidirectional,
    )
    model = SequenceModel(backbone, head)
    torch.nn.init.normal_(model.head.weight, std=0.5)
    return model.double().eval()


def reference_logits(model: SequenceModel, seq: str) -> np.ndarray:
    """The unpadded sequence's states, zero-filled to the head's length, times the weights; with
    ``bidirectional``, each base's state beside the unpadded reverse complement's at that base."""
    states = head_states(model, seq)
    flat = np.zeros((LENGTH, states.shape[1]))
    flat[: len(seq)] = states
    weight, bias = model.head.weight.detach().double().numpy(), model.head.bias.detach().double().numpy()
    return weight @ flat.reshape(-1) + bias


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_logits_read_each_position_from_the_first_base(side, bidirectional):
    model = positional_model(bidirectional=bidirectional)
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
    with pytest.raises(HyenaDNAError, match="longer than the 20 the head reads"):
        model(batch["input_ids"], batch["attention_mask"])
    with pytest.raises(HyenaDNAError, match="train_length"):
        SequenceModel(model.backbone, HeadConfig("multiclass", ["a", "b"], kind="positional"))
    with pytest.raises(HyenaDNAError, match="train_length"):
        SequenceModel(model.backbone, HeadConfig("multiclass", ["a", "b"], kind="positional", train_length=33))


def test_bidirectional_states_read_the_bases_after_each_position():
    """A causal backbone's state at a base never reads a later base; joined with the reverse
    strand's, it does: a base changed at the end moves the logits read from the first state alone."""
    seq, mutant = "ACGTTGCAAGGTCA", "ACGTTGCAAGGTCT"
    for bidirectional, moves in ((False, False), (True, True)):
        model = positional_model(bidirectional=bidirectional)
        with torch.no_grad():
            model.head.weight.view(3, LENGTH, -1)[:, 1:] = 0  # read position 0 only
        assert model.head.weight.shape[1] == LENGTH * 8 * (2 if bidirectional else 1)
        ref, mut = reference_logits(model, seq), reference_logits(model, mutant)
        batch = CharacterTokenizer()([seq, mutant])
        with torch.no_grad():
            logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
        np.testing.assert_allclose(logits, np.stack([ref, mut]), rtol=1e-10, atol=1e-12)
        assert (np.abs(logits[0] - logits[1]).max() > 1e-6) == moves


def test_bidirectional_round_trips_and_the_cnn_refuses_it(tmp_path):
    model = positional_model(bidirectional=True)
    model.save_pretrained(tmp_path / "m")
    loaded = load_task_model(tmp_path / "m").double()
    assert loaded.head_config.bidirectional
    np.testing.assert_allclose(predict_sequences(loaded, SEQS), predict_sequences(model, SEQS), rtol=1e-6)
    from hyenadna.heads.cnn import ConvClassifier, ConvConfig

    with pytest.raises(HyenaDNAError, match="CNN reads both sides"):
        ConvClassifier(ConvConfig(length=LENGTH), HeadConfig("multiclass", ["a", "b"], bidirectional=True))
    with pytest.raises(HyenaDNAError, match="model.overrides.hidden"):
        ConvClassifier(ConvConfig(length=LENGTH), HeadConfig("multiclass", ["a", "b"], hidden=8))


@pytest.mark.parametrize("side", ["right", "left"])
def test_center_pooling_reads_the_middle_base_and_sees_both_sides_only_when_bidirectional(side):
    """The linear head with ``pooling: center`` reads the middle real base's state (of an even
    count, the right of the two middle ones: index L // 2), whatever the padding; a base changed
    after the middle moves its logits only when the reverse strand's state is joined, and the
    middle base itself moves them either way (a causal state has read its own base)."""
    seqs = ["ACGTTGCAAGGTCA", "ACGTTGCAAGGTCT", "GCGCATG", "TTGACCANGTACGATCGA"]
    for bidirectional in (False, True):
        torch.manual_seed(1)
        backbone = HyenaDNA(HyenaConfig(d_model=8, n_layer=2, l_max=32, residual_in_fp32=False))
        head = HeadConfig("multiclass", ["a", "b", "c"], pooling="center", bidirectional=bidirectional)
        model = SequenceModel(backbone, head)
        torch.nn.init.normal_(model.head.weight, std=0.5)
        model = model.double().eval()
        weight, bias = model.head.weight.detach().numpy(), model.head.bias.detach().numpy()
        expected = []
        for seq in seqs:
            expected.append(weight @ head_states(model, seq)[len(seq) // 2] + bias)
        batch = CharacterTokenizer()(seqs, padding_side=side)
        with torch.no_grad():
            logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
        np.testing.assert_allclose(logits, np.stack(expected), rtol=1e-10, atol=1e-12)
        assert (np.abs(logits[0] - logits[1]).max() > 1e-6) == bidirectional  # the last base differs
        middle = "ACGTTGC" + "T" + "AGGTCA"  # seqs[0] with its base at index 14 // 2 = 7 changed
        batch = CharacterTokenizer()([seqs[0], middle], padding_side=side)
        with torch.no_grad():
            moved = model(batch["input_ids"], batch["attention_mask"]).numpy()
        assert np.abs(moved[0] - moved[1]).max() > 1e-6
