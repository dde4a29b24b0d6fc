from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hyenadna import CharacterTokenizer, HyenaDNAError
from hyenadna.data.tokenizer import (
    ID_COMPLEMENT,
    N_ID,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    VOCAB,
    reverse_complement,
    reverse_complement_ids,
)

IUPAC = "ACGTNRYSWKMBDHV"
dna = st.text(alphabet="ACGTN", max_size=300)
iupac_any_case = st.text(alphabet=IUPAC + IUPAC.lower(), max_size=300)


def test_vocabulary_matches_hyenadna():
    expected = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N"]
    assert list(VOCAB) == expected
    assert [VOCAB[t] for t in expected] == list(range(12))


def test_encode_bases_softmask_and_iupac():
    tok = CharacterTokenizer()
    assert tok.encode("ACGTN").tolist() == [7, 8, 9, 10, 11]
    assert tok.encode("acgtn").tolist() == [7, 8, 9, 10, 11]
    assert tok.encode("RYSWKMBDHVryswkmbdhv").tolist() == [N_ID] * 20
    ref = CharacterTokenizer(soft_mask="unk")
    assert ref.encode("AcGt").tolist() == [7, UNK_ID, 9, UNK_ID]


def test_unknown_character_error_names_it_and_position():
    tok = CharacterTokenizer()
    with pytest.raises(HyenaDNAError, match=r"'X' at position 3 in chr1"):
        tok.encode("ACGXX", name="chr1")
    with pytest.raises(HyenaDNAError, match="non-ASCII"):
        tok.encode("ACGé")
    assert CharacterTokenizer(unknown="unk").encode("AC-X").tolist() == [7, 8, UNK_ID, UNK_ID]


def test_special_token_policies():
    tok = CharacterTokenizer()
    assert tok.encode("AC").tolist() == [7, 8]
    assert tok.encode("AC", special_tokens="eos").tolist() == [7, 8, SEP_ID]
    assert tok.encode("AC", special_tokens="cls_sep").tolist() == [0, 7, 8, SEP_ID]
    assert CharacterTokenizer(special_tokens="eos").encode("A").tolist() == [7, SEP_ID]


@given(dna)
def test_encode_decode_round_trip(seq):
    tok = CharacterTokenizer()
    assert tok.decode(tok.encode(seq)) == seq
    assert tok.decode(tok.encode(seq.lower())) == seq


@given(iupac_any_case)
def test_reverse_complement_twice_is_identity(seq):
    assert reverse_complement(reverse_complement(seq)) == seq


@given(iupac_any_case)
def test_id_reverse_complement_matches_string_reverse_complement(seq):
    tok = CharacterTokenizer()
    ids = tok.encode(seq)
    assert torch.equal(reverse_complement_ids(ids), tok.encode(reverse_complement(seq)))
    assert torch.equal(reverse_complement_ids(reverse_complement_ids(ids)), ids)


def test_reverse_complement_examples():
    assert reverse_complement("AACGTn") == "nACGTT"
    assert reverse_complement("RYKMBV") == "BVKMRY"
    assert ID_COMPLEMENT[:7].tolist() == list(range(7))  # specials map to themselves
    batch = CharacterTokenizer().encode("AAC").repeat(2, 1)
    assert reverse_complement_ids(batch).tolist() == [[9, 10, 10]] * 2


def test_batch_padding_sides_and_mask():
    tok = CharacterTokenizer()
    out = tok.batch_encode(["ACG", "A"])
    assert out["input_ids"].tolist() == [[7, 8, 9], [PAD_ID, PAD_ID, 7]]
    assert out["attention_mask"].tolist() == [[True] * 3, [False, False, True]]
    right = tok(["ACG", "A"], padding_side="right", padding="max_length", max_length=4)
    assert right["input_ids"].tolist() == [[7, 8, 9, PAD_ID], [7, PAD_ID, PAD_ID, PAD_ID]]
    assert right["attention_mask"].sum(1).tolist() == [3, 1]


def test_batch_truncation_keeps_special_tokens():
    tok = CharacterTokenizer(special_tokens="cls_sep")
    out = tok.batch_encode(["ACGTA"], max_length=4, truncation=True)
    assert out["input_ids"].tolist() == [[0, 7, 8, SEP_ID]]
    left = tok.batch_encode(["ACGTA"], max_length=4, truncation=True, truncation_side="left")
    assert left["input_ids"].tolist() == [[0, 10, 7, SEP_ID]]
    with pytest.raises(HyenaDNAError, match="sequence 1 has 7 tokens"):
        tok.batch_encode(["A", "ACGTA"], max_length=4)


def test_bad_options_are_named():
    with pytest.raises(HyenaDNAError, match="padding_side"):
        CharacterTokenizer(padding_side="middle")
    with pytest.raises(HyenaDNAError, match="soft_mask"):
        CharacterTokenizer(soft_mask="lower")
    with pytest.raises(HyenaDNAError, match="token ids"):
        CharacterTokenizer().decode([3, 99])


def test_large_input_is_vectorised():
    """A 10 Mb string encodes to the right ids (speed is measured in benchmarks/)."""
    rng = np.random.default_rng(0)
    seq = rng.choice(np.frombuffer(b"ACGTacgtN", dtype=np.uint8), size=10_000_000).tobytes().decode()
    ids = CharacterTokenizer().encode(seq)
    assert ids.shape == (10_000_000,) and ids.dtype == torch.int64
    assert int(ids.min()) >= 7 and int(ids.max()) <= 11
    assert CharacterTokenizer().decode(ids[:50]) == seq[:50].upper()
