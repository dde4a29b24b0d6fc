"""The yardsticks: the CNN baseline, the k-mer model's validation-chosen C, order-k Markov chains
(checked against brute-force counting) and the Markov-chain classifier, plus the epoch-based
schedule and RC augmentation."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from hyenadna.analysis.markov import MarkovChain, windows_bits_per_base, windows_log_likelihoods
from hyenadna.data.tokenizer import CharacterTokenizer, reverse_complement
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.cnn import ConvClassifier, ConvConfig, one_hot
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import load_task_model
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.pipelines.predict import run_predict
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

REPO = Path(__file__).resolve().parents[2]
PROMOTERS = REPO / "data" / "tasks" / "promoters_chr20.csv.gz"
READER = {"split_col": "split", "name_col": "name"}


def test_cnn_shapes_gradients_and_padding():
    torch.manual_seed(0)
    head = HeadConfig(task="multiclass", labels=["a", "b", "c"])
    model = ConvClassifier(ConvConfig(length=50, channels=[8, 8], kernel_size=5), head)
    ids = torch.randint(7, 12, (4, 50))
    logits = model(ids)
    assert logits.shape == (4, 3)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    short = ids[:, :30]  # shorter inputs are zero-padded: the same as padding tokens with a mask
    padded = torch.cat([short, torch.full((4, 20), 4)], dim=1)
    mask = torch.arange(50) < 30
    torch.testing.assert_close(model(short), model(padded, mask.expand(4, 50)))
    with pytest.raises(HyenaDNAError, match="longer than the CNN's 50"):
        model(torch.randint(7, 11, (1, 51)))
    onehot = one_hot(torch.tensor([[7, 8, 9, 10, 11, 4]]))
    assert onehot[0].T.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0] * 4, [0] * 4]


def test_cnn_max_readout_pools_over_the_bases_and_finds_a_motif_anywhere(tmp_path):
    """readout: max takes each channel's maximum over the last map's positions that a base fed:
    the exact masked maximum, one dense input per channel whatever the length, the same output
    for a motif moved by whole pooling blocks, zeros (not -inf) for a window of only N, and the
    option kept by save and load."""
    torch.manual_seed(0)
    head = HeadConfig(task="multiclass", labels=["a", "b"])
    model = ConvClassifier(ConvConfig(length=64, channels=[6, 6], kernel_size=3, readout="max"), head).eval()
    assert model.head[2].in_features == 6
    ids = torch.from_numpy(np.random.default_rng(0).integers(7, 11, (3, 40))).long()
    logits = model(ids)
    features = model.backbone(torch.nn.functional.pad(one_hot(ids), (0, 24)))
    fed = (torch.arange(16) < 10).view(1, 1, 16)  # 40 bases feed 10 of the 16 positions left after pooling by 2 twice
    torch.testing.assert_close(logits, model.head(features.masked_fill(~fed, float("-inf")).amax(-1)))
    assert not torch.allclose(logits, model.head(features.amax(-1)))  # the padding's positions would win some maxima

    def motif_at(start: int) -> torch.Tensor:  # ACGTTGCA at `start` in a window of N (id 11)
        window = torch.full((1, 64), 11)
        window[0, start : start + 8] = torch.tensor([7, 8, 9, 10, 10, 9, 8, 7])
        return model(window)

    torch.testing.assert_close(motif_at(8), motif_at(40))  # moved by 8 bases, two whole blocks of pool**2
    assert torch.isfinite(model(torch.full((1, 20), 11))).all()  # only N: zeros, not -inf
    model.save_pretrained(tmp_path / "cnn")
    loaded = load_task_model(tmp_path / "cnn").eval()
    assert loaded.config.readout == "max"
    torch.testing.assert_close(loaded(ids), logits)
    with pytest.raises(HyenaDNAError, match="readout must be one of"):
        ConvConfig(length=64, readout="mean")


def test_cnn_rc_conjoin_is_strand_symmetric():
    torch.manual_seed(0)
    head = HeadConfig(task="multiclass", labels=["a", "b"], rc_conjoin=True)
    model = ConvClassifier(ConvConfig(length=40, channels=[4]), head).eval()
    tok = CharacterTokenizer()
    seq = "".join(np.random.default_rng(0).choice(list("ACGT"), 40))
    forward = model(torch.from_numpy(tok.encode_bases(seq)).long()[None])
    reverse = model(torch.from_numpy(tok.encode_bases(reverse_complement(seq))).long()[None])
    torch.testing.assert_close(forward, reverse)


@pytest.mark.slow
def test_cnn_finetunes_saves_and_predicts_on_real_promoters(tmp_path):
    out = tmp_path / "cnn"
    result = run_finetune(
        LabelledData(train=str(PROMOTERS), reader=READER, batch_size=32),
        ModelOptions("cnn", overrides={"channels": [16, 16]}),
        trainer=TrainerOptions(max_steps=-1, max_epochs=3, accelerator="cpu", devices=1, progress_bar=False),
        tuning=FinetuneOptions(patience=0),
        output=str(out),
    )
    assert result["test"]["auroc"] > 0.75  # promoters against background: a CNN learns it in 3 epochs
    assert result["steps"] == 3 * math.ceil(724 / 32)
    assert set(result["kmer_baseline"]) >= {"auroc", "c"} and result["kmer_baseline"]["c"] in (0.01, 0.1, 1.0)
    model = load_task_model(out / "model")
    assert isinstance(model, ConvClassifier) and model.config.length == 250
    tsv = tmp_path / "pred.tsv"
    assert run_predict(str(out / "model"), str(PROMOTERS), str(tsv), reader=READER)["rows"] == 724 + 192 + 172


def test_rc_augmentation_flips_about_half_the_training_sequences():
    from hyenadna.data.datamodules import LabelledDataModule

    data = LabelledDataModule(str(PROMOTERS), reader=READER, rc_prob=0.5)
    data.setup("fit")
    train, test = data.datasets["train"], data.datasets["test"]
    tok = CharacterTokenizer()
    torch.manual_seed(0)
    flipped = sum(
        not np.array_equal(train[i]["input_ids"].numpy(), tok.encode_bases(train.records[i].sequence))
        for i in range(400)
    )
    assert 150 < flipped < 250
    assert all(
        np.array_equal(test[i]["input_ids"].numpy(), tok.encode_bases(test.records[i].sequence)) for i in range(50)
    )
    with pytest.raises(HyenaDNAError, match="rc_prob"):
        LabelledDataModule(str(PROMOTERS), rc_prob=1.5)


def _brute_force_log_prob(counts, seq: str, t: int, order: int, beta: float) -> float:
    ctx = seq[max(0, t - order) : t]
    if "N" in ctx:
        ctx = ctx[ctx.rfind("N") + 1 :]
    p = 0.25
    for j in range(len(ctx) + 1):
        c = ctx[len(ctx) - j :]
        n = counts[j][c + seq[t]]
        total = sum(counts[j][c + b] for b in "ACGT")
        p = (n + beta * p) / (total + beta)
    return math.log(p)


def test_markov_chain_matches_brute_force_counts():
    rng = np.random.default_rng(1)
    seq = "".join(rng.choice(list("ACGTN"), p=[0.3, 0.2, 0.2, 0.25, 0.05], size=4000))
    tok = CharacterTokenizer()
    order, beta = 3, 1.5
    chain = MarkovChain(order, beta).fit([tok.encode_bases(seq)])
    counts = [Counter() for _ in range(order + 1)]
    for j in range(order + 1):
        for t in range(j, len(seq)):
            if "N" not in seq[t - j : t + 1]:
                counts[j][seq[t - j : t + 1]] += 1
    window = seq[1000:1400]
    got = chain.log_probs(tok.encode_bases(window))
    for t in range(len(window)):
        if t == 0 or window[t] == "N":
            assert math.isnan(got[t])
        else:
            assert got[t] == pytest.approx(_brute_force_log_prob(counts, window, t, order, beta), rel=1e-12)
    windows = [tok.encode_bases(seq[i : i + 300]) for i in range(0, 3000, 350)]
    bits, scored = windows_bits_per_base(chain, windows)  # one joined pass equals window by window
    each = [chain.log_probs(w) for w in windows]
    assert scored == sum(int((~np.isnan(e)).sum()) for e in each)
    assert bits == pytest.approx(-sum(np.nansum(e) for e in each) / scored / math.log(2), rel=1e-12)
    np.testing.assert_allclose(windows_log_likelihoods(chain, windows), [np.nansum(e) for e in each], rtol=1e-12)
    lower = chain.truncated(1, beta=0.5)
    assert lower.order == 1 and len(lower.gram_counts) == 2
    with pytest.raises(HyenaDNAError, match="order"):
        MarkovChain(13)


@pytest.mark.slow
def test_heldout_scores_model_and_chains_on_the_same_bases(tmp_path):
    from hyenadna.pipelines.heldout import heldout_table, run_heldout

    recipe = tmp_path / "pretrain.yaml"
    lambda_fa = REPO / "data" / "lambda_virus.fa"
    recipe.write_text(
        f"data:\n  genomes:\n    - path: {lambda_fa}\n      val_fraction: 0.1\n  length: 512\nmodel: {{}}\n"
    )
    result = run_heldout(str(recipe), model="tiny-1k", orders=[0, 2, 4], betas=[1.0, 8.0])
    assert result["windows"] == 4850 // 512 and result["window_bases"] == 513
    scored = {r["scored"] for r in result["markov"]} | {result["model"]["scored"]}
    assert scored == {result["windows"] * 512}  # every base after the first of each window
    assert 1.8 < result["best_markov"]["bits_per_base"] < 2.0  # a phage is close to random at low orders
    assert 1.95 < result["model"]["bits_per_base"] < 2.5  # random weights: 2 bits or a little worse
    assert "Markov order 4, beta 8" in heldout_table(result)
    with pytest.raises(HyenaDNAError, match="no data.genomes"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("model: {}\n")
        run_heldout(str(bad))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(recipe.read_text())
    assert run_heldout(str(tmp_path / "run"), orders=[2], betas=[1.0])["windows"] == result["windows"]


def test_kmer_baseline_chooses_c_on_validation():
    from hyenadna.analysis.kmer_baseline import kmer_baseline

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(120)]
    labels = np.array([int("GGG" in s) for s in seqs])
    result = kmer_baseline("multiclass", seqs[:80], labels[:80], seqs[100:], labels[100:],
                           val=(seqs[80:100], labels[80:100]), cs=(0.001, 1.0))  # fmt: skip
    assert result["c"] in (0.001, 1.0) and 0 <= result["accuracy"] <= 1
    assert kmer_baseline("multiclass", seqs[:80], labels[:80], seqs[100:], labels[100:])["c"] == 0.1
    json.dumps(result)


def test_markov_classifier_is_bayes_rule_on_per_class_chains():
    from hyenadna.analysis.markov_baseline import MarkovClassifier

    rng = np.random.default_rng(2)
    at_rich = ["".join(rng.choice(list("ACGT"), 80, p=[0.35, 0.15, 0.15, 0.35])) for _ in range(30)]
    gc_rich = ["".join(rng.choice(list("ACGT"), 80, p=[0.15, 0.35, 0.35, 0.15])) for _ in range(10)]
    seqs, labels = at_rich + gc_rich, np.array([0] * 30 + [1] * 10)
    tok = CharacterTokenizer()
    for both in (False, True):
        classifier = MarkovClassifier(seqs, labels, max_order=3, both_strands=both)
        queries = ["ACGTNACGGCA", "TTATAAT", "GCGCCGGC"]
        got = classifier.log_posteriors(classifier.encode(queries), order=2, beta=4.0)
        for q, row in zip(queries, got):
            for c, members in enumerate((at_rich, gc_rich)):
                train = members + ([reverse_complement(s) for s in members] if both else [])
                chain = MarkovChain(2, 4.0).fit([tok.encode_bases(s) for s in train])
                strands = [q, reverse_complement(q)] if both else [q]
                expected = np.mean([np.nansum(chain.log_probs(tok.encode_bases(s))) for s in strands])
                assert row[c] == pytest.approx(expected + math.log((30, 10)[c] / 40), rel=1e-12)
    assert got[1].argmax() == 0 and got[2].argmax() == 1


def test_markov_baseline_chooses_on_validation_and_reads_real_bacteria():
    """Four bacterial genomes from the bundled task table: 100 training windows of 200 bases each."""
    import csv
    import gzip

    from hyenadna.analysis.markov_baseline import markov_baseline

    rows: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    per = {"train": 100, "val": 40, "test": 60}
    with gzip.open(REPO / "data" / "tasks" / "bacteria4.csv.gz", "rt") as handle:
        for row in csv.DictReader(handle):
            if sum(r["label"] == row["label"] for r in rows[row["split"]]) < per[row["split"]]:
                rows[row["split"]].append(row)
    names = sorted({r["label"] for r in rows["train"]})
    split = {k: ([r["sequence"] for r in v], np.array([names.index(r["label"]) for r in v])) for k, v in rows.items()}
    result = markov_baseline(*split["train"], *split["test"], val=split["val"], orders=(0, 2, 4), betas=(1.0, 16.0))
    assert result["order"] in (0, 2, 4) and result["beta"] in (1.0, 16.0) and isinstance(result["both_strands"], bool)
    assert result["accuracy"] > 0.7  # chance is 0.25; GC content alone separates two pairs
    fixed = markov_baseline(*split["train"], *split["test"], orders=(0, 2, 4))
    assert (fixed["order"], fixed["beta"], fixed["both_strands"]) == (4, 16.0, False)
    json.dumps(result)
