"""Labelled sequences in the formats users have, the label vocabulary, splits and padded batches."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from hyenadna.data.datamodules import LabelledDataModule, PretrainDataModule
from hyenadna.data.datasets import LabelledDataset, PadCollator
from hyenadna.data.genome import Genome
from hyenadna.data.intervals import read_bed, region_sequence
from hyenadna.data.labels import (
    LabelledRecord,
    LabelVocab,
    read_labelled,
    read_labelled_fasta,
    read_labelled_table,
    stratified_split,
)
from hyenadna.data.tokenizer import PAD_ID, CharacterTokenizer
from hyenadna.errors import HyenaDNAError


def test_table_with_configurable_columns_and_split(tmp_path):
    path = tmp_path / "promoters.tsv"
    path.write_text("id\tseq\tclass\tfold\ns1\tACGT\tpromoter\ttrain\ns2\tGGCA\tnon\tvalid\ns3\tTT\tpromoter\ttest\n")
    records = list(read_labelled_table(path, sequence_col="seq", label_cols="class", name_col="id", split_col="fold"))
    assert [(r.name, r.sequence, r.label, r.split) for r in records] == [
        ("s1", "ACGT", ("promoter",), "train"),
        ("s2", "GGCA", ("non",), "val"),
        ("s3", "TT", ("promoter",), "test"),
    ]
    assert records[1].where == f"{path}, line 3"


def test_multilabel_and_regression_tables(tmp_path):
    sep = tmp_path / "multi.csv"
    sep.write_text("sequence,label\nACGT,CTCF;POLR2A\nAAAA,\nCCCC,CTCF\n")
    records = list(read_labelled_table(sep, label_separator=";"))
    vocab = LabelVocab.fit(records, "multilabel")
    assert vocab.names == ["CTCF", "POLR2A"]
    assert [vocab.encode(r).tolist() for r in records] == [[1, 1], [0, 0], [1, 0]]
    cols = tmp_path / "deepsea.csv"
    cols.write_text("sequence,dnase,h3k27ac\nACGT,1,0\nAAAA,0,0\n")
    records = list(read_labelled_table(cols, label_cols=["dnase", "h3k27ac"], class_columns=True))
    assert [r.label for r in records] == [("dnase",), ()]
    reg = tmp_path / "expression.csv"
    reg.write_text("sequence,mean,std\nACGT,1.5,0.2\nAAAA,-3,1e-3\n")
    records = list(read_labelled_table(reg, label_cols=["mean", "std"]))
    vocab = LabelVocab.fit(records, "regression", target_names=["mean", "std"])
    assert np.allclose(vocab.encode(records[1]), [-3.0, 1e-3])
    bad = LabelledRecord("x", "AC", ("high", "0"), where="expression.csv, line 9")
    with pytest.raises(HyenaDNAError, match="expression.csv, line 9: regression targets must be numbers"):
        vocab.encode(bad)


def test_fasta_label_field_and_nucleotide_transformer_style(tmp_path):
    field = tmp_path / "enhancers.fa"
    field.write_text(">e1 label=enhancer cell=K562\nACGT\nAC\n>e2 label=background\nTTTT\n")
    records = list(read_labelled_fasta(field))
    assert [(r.name, r.sequence, r.label) for r in records] == [
        ("e1", "ACGTAC", ("enhancer",)),
        ("e2", "TTTT", ("background",)),
    ]
    nt = tmp_path / "promoter_tata.fasta"
    nt.write_text(">chr1:100-400|1\nACGTNN\n>chr2:5-305|0\nGGGG\n")
    records = read_labelled(nt, label_from="last_char")
    assert [(r.name, r.label) for r in records] == [("chr1:100-400", ("1",)), ("chr2:5-305", ("0",))]
    missing = tmp_path / "nolabel.fa"
    missing.write_text(">e1 label=a\nACGT\n>e2\nAC\n")
    with pytest.raises(HyenaDNAError, match=rf"{missing}, line 3 \(record 'e2'\): expected one 'label=VALUE'"):
        list(read_labelled_fasta(missing))


def test_bed_with_a_label_column(real, tmp_path):
    bed = tmp_path / "peaks.bed"
    bed.write_text("chr1\t100\t200\tpeak1\t0\t+\tbound\nchr2\t50\t90\tpeak2\t0\t-\tunbound\n")
    records = read_labelled(bed, genome=real.ex1_fa, label_column=7, length=120, resize="center")
    genome = Genome(real.ex1_fa)
    regions = list(read_bed(bed))
    assert [r.label for r in records] == [("bound",), ("unbound",)]
    assert [r.sequence for r in records] == [region_sequence(genome, g, 120, "center") for g in regions]
    assert all(len(r.sequence) == 120 for r in records)
    by_name = read_labelled(bed, genome=real.ex1_fa)
    assert [r.label for r in by_name] == [("peak1",), ("peak2",)]


def test_bed_positions_with_a_split_column_read_at_any_context(real, tmp_path):
    bed = tmp_path / "sites.bed"
    bed.write_text("chr1\t500\t501\ts1\t0\t.\tgene\ttrain\nchr2\t700\t701\ts2\t0\t.\tintergenic\ttest\n")
    genome = Genome(real.ex1_fa)
    for length in (64, 257):
        records = read_labelled(bed, genome=real.ex1_fa, label_column=7, split_column=8, length=length, resize="center")
        expected = [("s1", ("gene",), "train"), ("s2", ("intergenic",), "test")]
        assert [(r.name, r.label, r.split) for r in records] == expected
        assert [r.sequence for r in records] == [region_sequence(genome, g, length, "center") for g in read_bed(bed)]
        start = 500 + (1 - length) // 2  # the centre base sits at index length // 2 (even) or in the middle (odd)
        assert records[0].sequence == genome.fetch("chr1", start, start + length).upper()
    bad = tmp_path / "bad.bed"
    bad.write_text("chr1\t500\t501\ts1\t0\t.\tgene\tholdout\n")
    with pytest.raises(HyenaDNAError, match=rf"{bad}, line 1: unknown split 'holdout'"):
        read_labelled(bad, genome=real.ex1_fa, label_column=7, split_column=8)
    bad.write_text("chr1\t500\t501\ts1\t0\t.\tgene\t\n")
    with pytest.raises(HyenaDNAError, match=rf"{bad}, line 1: empty split in column 8"):
        read_labelled(bad, genome=real.ex1_fa, label_column=7, split_column=8)
    with pytest.raises(HyenaDNAError, match=rf"{bed}, line 1: no column 9 for the split"):
        read_labelled(bed, genome=real.ex1_fa, label_column=7, split_column=9)
    with pytest.raises(HyenaDNAError, match="split_column must be 4 or more"):
        read_labelled(bed, genome=real.ex1_fa, split_column=2)


def test_genomic_benchmarks_layout(tmp_path):
    root = tmp_path / "human_nontata_promoters"
    for split, cls, name, seq in [
        ("train", "positive", "0", "ACGT"),
        ("train", "negative", "1", "GGGG"),
        ("train", "positive", "2", "TTAA\n"),
        ("test", "negative", "3", "CCCC"),
    ]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        (root / split / cls / f"{name}.txt").write_text(seq)
    records = read_labelled(root)
    assert [(r.name, r.sequence, r.label, r.split) for r in records] == [
        ("negative/1", "GGGG", ("negative",), "train"),
        ("positive/0", "ACGT", ("positive",), "train"),
        ("positive/2", "TTAA", ("positive",), "train"),
        ("negative/3", "CCCC", ("negative",), "test"),
    ]
    assert LabelVocab.fit(records, "multiclass").names == ["negative", "positive"]


def test_vocab_natural_order_unknown_labels_and_json(tmp_path):
    records = [LabelledRecord(str(i), "A", (c,), where=f"f, line {i}") for i, c in enumerate(["10", "2", "0", "2"])]
    vocab = LabelVocab.fit(records, "multiclass")
    assert vocab.names == ["0", "2", "10"]
    assert [int(vocab.encode(r)) for r in records] == [2, 1, 0, 1]
    with pytest.raises(HyenaDNAError, match=r"f, line 7: unknown label '3'"):
        vocab.encode(LabelledRecord("x", "A", ("3",), where="f, line 7"))
    vocab.save_json(tmp_path / "labels.json")
    assert LabelVocab.load_json(tmp_path / "labels.json") == vocab
    with pytest.raises(HyenaDNAError, match="at least 2 classes"):
        LabelVocab.fit(records[:1], "multiclass")


def test_stratified_split_keeps_class_shares():
    records = [LabelledRecord(str(i), "ACGT", ("a" if i % 4 else "b",)) for i in range(200)]
    train, val = stratified_split(records, 0.2, seed=0)
    assert len(val) == 40 and len(train) == 160
    assert Counter(r.label[0] for r in val) == {"a": 30, "b": 10}
    assert not {r.name for r in train} & {r.name for r in val}
    assert stratified_split(records, 0.2, seed=0) == (train, val)


def test_padded_batches_left_and_right(tmp_path):
    records = [LabelledRecord("a", "ACGTA", ("x",)), LabelledRecord("b", "GG", ("y",))]
    vocab = LabelVocab.fit(records, "multiclass")
    dataset = LabelledDataset(records, vocab)
    left = PadCollator("left")([dataset[0], dataset[1]])
    tok = CharacterTokenizer()
    assert left["input_ids"][1].tolist() == [PAD_ID] * 3 + tok.encode("GG").tolist()
    assert left["attention_mask"].tolist() == [[True] * 5, [False] * 3 + [True] * 2]
    assert left["target"].tolist() == [0, 1]
    right = PadCollator("right", pad_to_multiple_of=8)([dataset[0], dataset[1]])
    assert right["input_ids"].shape == (2, 8)
    assert right["input_ids"][1, :2].tolist() == tok.encode("GG").tolist()
    assert right["attention_mask"][1].tolist() == [True] * 2 + [False] * 6


def test_truncation_policies():
    records = [LabelledRecord("a", "AACCGGTT", ("x",), where="t.csv, line 2"), LabelledRecord("b", "AC", ("y",))]
    vocab = LabelVocab.fit(records, "multiclass")
    tok = CharacterTokenizer()
    for how, kept in [("right", "AACC"), ("left", "GGTT"), ("center", "CCGG")]:
        dataset = LabelledDataset(records, vocab, max_length=4, truncation=how)
        assert torch.equal(dataset[0]["input_ids"], tok.encode(kept))
    with pytest.raises(HyenaDNAError, match="t.csv, line 2: sequence of 8 bases is longer than max_length 4"):
        LabelledDataset(records, vocab, max_length=4)


def test_labelled_datamodule_splits_and_unknown_labels(tmp_path):
    train = tmp_path / "train.csv"
    rows = [f"{'ACGT' * (1 + i % 3)},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    train.write_text("sequence,label\n" + "\n".join(rows) + "\n")
    test = tmp_path / "test.csv"
    test.write_text("sequence,label\nACGT,pos\nGG,neg\n")
    dm = LabelledDataModule(train, test=test, batch_size=8, val_fraction=0.25, padding_side="right")
    dm.setup("fit")
    assert dm.vocab.names == ["neg", "pos"]
    assert len(dm.datasets["train"]) == 30 and len(dm.datasets["val"]) == 10 and len(dm.datasets["test"]) == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 8 and batch["attention_mask"][:, 0].all()
    # evaluation takes the batching engine's length-sorted batches: every record once, longest first
    val = list(dm.val_dataloader())
    seen = torch.cat([b["index"] for b in val]).tolist()
    assert sorted(seen) == list(range(10))
    widths = [b["input_ids"].shape[1] for b in val]
    assert widths == sorted(widths, reverse=True)
    lengths = [b["attention_mask"].sum(1) for b in val]
    assert all(int(n.min()) >= int(later.max()) for n, later in itertools.pairwise(lengths))
    bad = tmp_path / "bad_test.csv"
    bad.write_text("sequence,label\nACGT,pos\nGG,maybe\n")
    with pytest.raises(HyenaDNAError, match=rf"{bad}, line 3: unknown label 'maybe'"):
        LabelledDataModule(train, test=bad).setup("fit")


def test_pretrain_datamodule_on_lambda(real):
    dm = PretrainDataModule(
        [{"path": str(real.lambda_fa), "val_fraction": 0.1}], length=512, batch_size=4, samples_per_epoch=12
    )
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and batches[0]["input_ids"].shape == (4, 512)
    assert torch.equal(batches[0]["input_ids"][:, 1:], batches[0]["labels"][:, :-1])
    val = list(dm.val_dataloader())
    assert sum(b["input_ids"].shape[0] for b in val) == (4850 - 513) // 512 + 1
