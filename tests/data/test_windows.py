"""Pretraining windows on real genomes: content, N filtering, determinism across workers and ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from hyenadna.data.corpus import Corpus, GenomeSource
from hyenadna.data.tokenizer import N_ID, CharacterTokenizer, reverse_complement
from hyenadna.data.windows import RandomWindows, StridedWindows
from hyenadna.errors import HyenaDNAError

TOK = CharacterTokenizer()


def ids_of(seq: str) -> torch.Tensor:
    return torch.from_numpy(TOK.encode_bases(seq))


@pytest.fixture(scope="module")
def chr20_corpus(real):
    return Corpus([GenomeSource(real.chr20, val_fraction=0.05)])


def test_random_windows_are_genome_slices_shifted_by_one(chr20_corpus):
    windows = RandomWindows(chr20_corpus, length=1000, samples_per_epoch=20, seed=3, max_n_fraction=0.0)
    train = chr20_corpus.intervals("train")[0]
    for i in range(20):
        iv, start, rc = windows.locate(i)
        assert not rc and iv == train
        assert train.start <= start and start + 1001 <= train.end
        expected = ids_of(chr20_corpus.fetch(iv, start, start + 1001))
        item = windows[i]
        assert torch.equal(item["input_ids"], expected[:-1])
        assert torch.equal(item["labels"], expected[1:])
        assert not (item["input_ids"] == N_ID).any()


def test_one_megabase_windows_skip_n_runs(chr20_corpus):
    windows = RandomWindows(chr20_corpus, length=1_000_000, samples_per_epoch=4, seed=0, max_n_fraction=0.01)
    for i in range(4):
        ids = windows[i]["input_ids"]
        assert ids.shape == (1_000_000,)
        assert (ids == N_ID).float().mean() <= 0.01


def test_windows_depend_on_seed_epoch_and_index_only(chr20_corpus):
    a = RandomWindows(chr20_corpus, length=256, samples_per_epoch=16, seed=7)
    b = RandomWindows(chr20_corpus, length=256, samples_per_epoch=16, seed=7)
    assert [a.locate(i) for i in range(16)] == [b.locate(i) for i in range(16)]
    b.set_epoch(1)
    assert [a.locate(i) for i in range(16)] != [b.locate(i) for i in range(16)]
    c = RandomWindows(chr20_corpus, length=256, samples_per_epoch=16, seed=8)
    assert [a.locate(i) for i in range(16)] != [c.locate(i) for i in range(16)]


def test_same_windows_with_workers_and_across_ranks(chr20_corpus):
    dataset = RandomWindows(chr20_corpus, length=128, samples_per_epoch=24, seed=1, rc_prob=0.5)
    single = torch.cat([b["input_ids"] for b in DataLoader(dataset, batch_size=4)])
    workers = torch.cat([b["input_ids"] for b in DataLoader(dataset, batch_size=4, num_workers=2)])
    assert torch.equal(single, workers)
    seen = {}
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=5)
        for index in sampler:
            seen[index] = dataset[index]["input_ids"]
    assert sorted(seen) == list(range(24))
    assert torch.equal(torch.stack([seen[i] for i in range(24)]), single)


def test_reverse_complement_augmentation(chr20_corpus):
    windows = RandomWindows(chr20_corpus, length=300, samples_per_epoch=30, seed=2, rc_prob=0.5)
    flips = 0
    for i in range(30):
        iv, start, rc = windows.locate(i)
        seq = chr20_corpus.fetch(iv, start, start + 301)
        expected = ids_of(reverse_complement(seq) if rc else seq)
        assert torch.equal(windows[i]["input_ids"], expected[:-1])
        flips += rc
    assert 5 < flips < 25


def test_genome_weights_set_the_mixture(real):
    corpus = Corpus([GenomeSource(real.lambda_fa, weight=1.0), GenomeSource(real.ce_fa, weight=3.0)])
    windows = RandomWindows(corpus, length=200, samples_per_epoch=800, seed=0)
    share = np.mean([windows.locate(i)[0].genome == 1 for i in range(800)])
    assert 0.70 < share < 0.80


def test_windows_never_cross_into_held_out_parts(real):
    corpus = Corpus([GenomeSource(real.lambda_fa, val_fraction=0.2)])
    train_end = corpus.intervals("train")[0].end
    windows = RandomWindows(corpus, length=500, samples_per_epoch=200, seed=4)
    assert all(start + 501 <= train_end for _, start, _ in (windows.locate(i) for i in range(200)))
    val = StridedWindows(corpus, length=500, split="val", stride=250)
    assert all(start >= train_end for _, start in val.windows)
    assert len(val) == (corpus.intervals("val")[0].length - 501) // 250 + 1


def test_strided_windows_filter_n_exactly(chr20_corpus):
    val = StridedWindows(chr20_corpus, length=4095, split="val", stride=4096, max_n_fraction=0.05)
    iv = chr20_corpus.intervals("val")[0]
    expected = []
    for start in range(iv.start, iv.end - 4096 + 1, 4096):
        seq = chr20_corpus.fetch(iv, start, start + 4096)
        if seq.count("N") <= 0.05 * 4096:
            expected.append(start)
    assert [s for _, s in val.windows] == expected
    assert len(expected) < (iv.length - 4096) // 4096 + 1  # the end of chr20 holds N runs to skip
    item = val[len(val) // 2]
    _, start = val.windows[len(val) // 2]
    assert torch.equal(item["input_ids"], ids_of(chr20_corpus.fetch(iv, start, start + 4095)))
    thinned = StridedWindows(chr20_corpus, length=4095, split="val", stride=4096, max_n_fraction=0.05, max_windows=10)
    assert len(thinned) == 10 and thinned.windows[0] == val.windows[0] and thinned.windows[-1] == val.windows[-1]


def test_all_n_genome_is_an_error(tmp_path):
    path = tmp_path / "gap.fa"
    path.write_text(">gap\n" + "N" * 5000 + "\n")
    corpus = Corpus([GenomeSource(path)])
    with pytest.raises(HyenaDNAError, match="had more than 10% N"):
        RandomWindows(corpus, length=100, samples_per_epoch=2, max_tries=5)[0]
    with pytest.raises(HyenaDNAError, match="no val window"):
        StridedWindows(Corpus([GenomeSource(path, val_fraction=0.5)]), length=100)
    with pytest.raises(HyenaDNAError, match="holds a window of 10,001 bases"):
        RandomWindows(corpus, length=10_000, samples_per_epoch=2)
