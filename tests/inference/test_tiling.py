"""Sequences longer than the model: windows, stitched per-base results, pooled and predicted."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hyenadna
from hyenadna import CharacterTokenizer, HyenaConfig, HyenaDNA, Tiling
from hyenadna.cli import main
from hyenadna.data.genome import Genome
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import predict_sequences
from hyenadna.heads.task_model import SequenceModel


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 400), st.integers(1, 399), st.integers(1, 3000))
def test_spans_cover_every_base_once_with_left_context(window, stride, length):
    if stride >= window:
        with pytest.raises(HyenaDNAError, match="stride"):
            Tiling(window, stride)
        return
    spans = Tiling(window, stride).spans(length)
    kept = np.zeros(length, dtype=int)
    for k, (start, end, keep_start, keep_end) in enumerate(spans):
        assert 0 <= start <= keep_start < keep_end <= end <= length and end - start == min(window, length)
        kept[keep_start:keep_end] += 1
        if k:  # after the first window, every kept base has at least window - stride bases before it
            assert keep_start - start >= window - stride
    assert np.all(kept == 1)
    assert len(spans) == 1 or length > window


@pytest.fixture(scope="module")
def chr20_5000(real) -> str:
    return Genome(str(real.chr20)).fetch("20", 30_000_000, 30_005_000).upper()


def test_tiled_log_likelihoods_equal_their_windows(chr20_5000):
    """Every base's tiled log-likelihood and entropy is what the window it comes from gives it."""
    model = hyenadna.load("tiny-1k")
    tiling = Tiling(window=1024, stride=512)
    scores, entropy = model.score(chr20_5000, reduce="none", tiling=tiling, return_entropy=True)
    scores, entropy = scores[0], entropy[0]
    assert len(scores) == 5000 and np.isnan(scores[0]) and not np.isnan(scores[1:]).any()
    for start, end, keep_start, keep_end in tiling.spans(5000):
        window_scores, window_entropy = model.score(chr20_5000[start:end], reduce="none", return_entropy=True)
        inner = slice(keep_start - start, keep_end - start)
        np.testing.assert_allclose(scores[keep_start:keep_end], window_scores[0][inner], rtol=0, atol=1e-6)
        np.testing.assert_allclose(entropy[keep_start:keep_end], window_entropy[0][inner], rtol=0, atol=1e-6)
    mean = model.score(chr20_5000, tiling=tiling)[0]
    assert mean == pytest.approx(np.nanmean(scores), rel=1e-9)


def test_tiled_embeddings_pool_the_stitched_states(chr20_5000):
    model = hyenadna.load("tiny-1k")
    tiling = Tiling(window=1000, stride=700)
    (states,) = model.embed([chr20_5000], pooling="none", tiling=tiling)
    assert states.shape == (5000, model.config.d_model)
    for start, end, keep_start, keep_end in tiling.spans(5000):
        (window_states,) = model.embed([chr20_5000[start:end]], pooling="none")
        np.testing.assert_allclose(states[keep_start:keep_end], window_states[keep_start - start : keep_end - start],
                                   rtol=0, atol=1e-5)  # fmt: skip
    short = "ACGTTGCAAGGT"
    for pooling, expected in (("mean", states.mean(0)), ("max", states.max(0)), ("last", states[-1]),
                              ("first", states[0]), ("center", states[2500])):  # fmt: skip
        vectors = model.embed([chr20_5000, short], pooling=pooling, tiling=tiling)
        np.testing.assert_allclose(vectors[0], expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(vectors[1], model.embed([short], pooling=pooling)[0], atol=1e-5)  # never tiled
    both = model.embed([chr20_5000], tiling=tiling, rc_average=True)[0]
    from hyenadna.data.tokenizer import reverse_complement

    reverse = model.embed([reverse_complement(chr20_5000)], tiling=tiling)[0]
    np.testing.assert_allclose(both, (states.mean(0) + reverse) / 2, rtol=0, atol=1e-5)


def test_without_tiling_a_long_sequence_is_refused_naming_the_option(chr20_5000):
    model = hyenadna.load("tiny-1k")
    for call in (lambda: model.score(chr20_5000), lambda: model.embed(chr20_5000)):
        with pytest.raises(HyenaDNAError, match=r"sequence 0 has 5,000 bases.*--tiling.window"):
            call()
    with pytest.raises(HyenaDNAError, match="longer than the model's l_max"):
        model.score(chr20_5000, tiling=Tiling(window=2048))
    with pytest.raises(HyenaDNAError, match="window must be 0"):
        Tiling(window=1)


def test_tiled_predictions_combine_the_windows(chr20_5000):
    torch.manual_seed(0)
    head = SequenceModel(HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024)), HeadConfig("multiclass", ["a", "b"]))
    torch.nn.init.normal_(head.head.weight, std=1.0)
    head.eval()
    for combine in ("mean", "max"):
        tiling = Tiling(window=1000, stride=900, combine=combine)
        got = predict_sequences(head, [chr20_5000, "ACGT"], tiling=tiling)
        windows = [chr20_5000[s.start : s.end] for s in tiling.spans(5000)]
        probs = predict_sequences(head, windows)
        # max: the softmax of the windows' largest logits (log-probabilities differ from logits by a constant)
        expected = probs.mean(0) if combine == "mean" else None
        if combine == "max":
            ids = torch.stack([torch.as_tensor(CharacterTokenizer().encode_bases(w)) for w in windows])
            with torch.no_grad():
                expected = head(ids).amax(0).softmax(-1).numpy()
        np.testing.assert_allclose(got[0], expected, atol=1e-6)
        np.testing.assert_allclose(got[1], predict_sequences(head, ["ACGT"])[0], atol=1e-6)
    with pytest.raises(HyenaDNAError, match="long has 5,000 bases.*--tiling.window"):
        predict_sequences(head, [chr20_5000], names=["long"])


@pytest.mark.slow
def test_commands_tile_long_records(chr20_5000, tmp_path):
    fasta = tmp_path / "long.fa"
    fasta.write_text(f">long\n{chr20_5000}\n>short\nACGTACGTTTGA\n")
    with pytest.raises(SystemExit):
        main(["score", "--model", "tiny-1k", "--fasta", str(fasta), "--output", str(tmp_path / "x.tsv")])
    table, per_base = tmp_path / "ll.tsv", tmp_path / "per_base.tsv"
    main(["score", "--model", "tiny-1k", "--fasta", str(fasta), "--output", str(table), "--tiling.window", "1024",
          "--per_base_output", str(per_base)])  # fmt: skip
    with open(table) as fh:
        rows = {r["name"]: r for r in csv.DictReader(fh, delimiter="\t")}
    torch.manual_seed(0)  # the command's --seed: a preset's random weights
    expected = hyenadna.load("tiny-1k").score([chr20_5000], tiling=Tiling(1024))[0]
    assert rows["long"]["scored"] == "4999" and float(rows["long"]["ll_mean"]) == pytest.approx(expected, rel=1e-5)
    with open(per_base) as fh:
        bases = list(csv.DictReader(fh, delimiter="\t"))
    assert len(bases) == 5012 and bases[0]["ll"] == "" and bases[4999]["position"] == "5000"
    embeddings = tmp_path / "emb.h5"
    main(["embed", "--model", "tiny-1k", "--input.fasta", str(fasta), "--output", str(embeddings), "--per_token",
          "--tiling.window", "1000", "--tiling.stride", "700", "--progress", "false"])  # fmt: skip
    import h5py

    with h5py.File(embeddings) as h5:
        assert h5["token_offsets"][:].tolist() == [0, 5000, 5012]
        vectors = h5["embeddings"][:]
    torch.manual_seed(0)
    direct = hyenadna.load("tiny-1k").embed([chr20_5000, "ACGTACGTTTGA"], tiling=Tiling(1000, 700))
    np.testing.assert_allclose(vectors, direct, atol=1e-5)
