"""Indexed FASTA access on real genomes: slices against pyfaidx, index building, contig choice, errors."""

from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pyfaidx
import pytest

from hyenadna.data import genome as genome_module
from hyenadna.data.corpus import Corpus, GenomeSource
from hyenadna.data.genome import Genome
from hyenadna.errors import HyenaDNAError


def test_bgzip_chr20_slices_match_pyfaidx(real):
    genome = Genome(real.chr20)
    assert genome.contigs == {"20": 63_025_520}
    reference = pyfaidx.Fasta(str(real.chr20), sequence_always_upper=False)["20"]
    rng = np.random.default_rng()
    for _ in range(5):
        start = int(rng.integers(0, 63_025_520 - 5000))
        end = start + int(rng.integers(1, 5000))
        assert genome.fetch("20", start, end) == str(reference[start:end])
    assert genome.fetch("20", 63_025_520 - 10, 63_025_520) == str(reference[-10:])


def test_one_megabase_window_from_bgzip(real):
    genome = Genome(real.chr20)
    seq = genome.fetch("20", 30_000_000, 31_000_000)
    assert len(seq) == 1_000_000
    assert set(seq) <= set("ACGTN")


def test_missing_index_is_built_beside_the_file(real, tmp_path):
    copy = tmp_path / "20.fa.gz"
    shutil.copyfile(real.chr20, copy)
    genome = Genome(copy)
    assert (tmp_path / "20.fa.gz.fai").read_text() == (real.root / "20.fa.gz.fai").read_text()
    assert (tmp_path / "20.fa.gz.gzi").is_file()
    assert genome.fetch("20", 1_000_000, 1_000_050) == Genome(real.chr20).fetch("20", 1_000_000, 1_000_050)


def test_unwritable_folder_puts_the_index_in_the_cache(real, tmp_path, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    copy = folder / "ex1.fa"
    shutil.copyfile(real.ex1_fa, copy)
    monkeypatch.setattr(genome_module, "_writable", lambda path: False)
    genome = Genome(copy)
    assert not (folder / "ex1.fa.fai").exists()
    assert list((tmp_path / "cache").rglob("ex1.fa.fai"))
    assert genome.fetch("chr2", 10, 60) == str(pyfaidx.Fasta(str(real.ex1_fa))["chr2"][10:60])


def test_plain_gzip_is_decompressed_into_the_cache(real, tmp_path):
    packed = tmp_path / "lambda.fa.gz"
    with open(real.lambda_fa, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    genome = Genome(packed)
    plain = Genome(real.lambda_fa)
    assert genome.contigs == plain.contigs
    name = next(iter(plain.contigs))
    assert genome.fetch(name, 0, plain.contigs[name]) == plain.fetch(name, 0, plain.contigs[name])


def test_soft_mask_kept_or_upper_cased(tmp_path):
    path = tmp_path / "masked.fa"
    path.write_text(">c1\nACGTacgtNNac\n")
    assert Genome(path).fetch("c1", 2, 10) == "GTacgtNN"
    assert Genome(path, soft_mask="upper").fetch("c1", 2, 10) == "GTACGTNN"


def test_fetch_with_padding_past_contig_ends(real):
    genome = Genome(real.ex1_fa)
    size = genome.contigs["chr1"]
    assert genome.fetch("chr1", -3, 4, pad=True) == "NNN" + genome.fetch("chr1", 0, 4)
    assert genome.fetch("chr1", size - 2, size + 3, pad=True) == genome.fetch("chr1", size - 2, size) + "NNN"
    assert genome.fetch("chr1", size + 5, size + 8, pad=True) == "NNN"
    with pytest.raises(HyenaDNAError, match=r"chr1:1570-1580 runs past the contig \(length 1,575\)"):
        genome.fetch("chr1", size - 5, size + 5)
    with pytest.raises(HyenaDNAError, match="no contig 'chrX'"):
        genome.fetch("chrX", 0, 10)


def test_select_contigs(real):
    genome = Genome(real.ce_fa)
    names = list(genome.contigs)
    assert genome.select_contigs() == names
    assert genome.select_contigs(include=["CHROMOSOME_V", "CHROMOSOME_I"]) == ["CHROMOSOME_V", "CHROMOSOME_I"]
    assert genome.select_contigs(exclude=["CHROMOSOME_I"]) == names[1:]
    assert genome.select_contigs(pattern=r"CHROMOSOME_I+") == [
        n for n in names if n in ("CHROMOSOME_I", "CHROMOSOME_II", "CHROMOSOME_III")
    ]
    assert genome.select_contigs(min_length=10_000) == [n for n in names if genome.contigs[n] >= 10_000]
    with pytest.raises(HyenaDNAError, match=r"include names contigs it does not have: \['chrZ'\]"):
        genome.select_contigs(include=["chrZ"])


def test_genome_pickles_without_its_handle(real):
    genome = Genome(real.ex1_fa)
    first = genome.fetch("chr1", 0, 30)
    clone = pickle.loads(pickle.dumps(genome))
    assert clone._handle is None
    assert clone.fetch("chr1", 0, 30) == first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ACGT\n>c1\nACGT\n", "cannot index"),
        ("", "empty file"),
    ],
)
def test_malformed_fasta_errors_name_the_file_and_leave_no_index(tmp_path, text, message):
    path = tmp_path / "bad.fa"
    path.write_text(text)
    with pytest.raises(HyenaDNAError, match=message) as info:
        Genome(path)
    assert str(path) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["bad.fa"]


def test_empty_record_is_named(tmp_path):
    path = tmp_path / "empty_record.fa"
    path.write_text(">c1\nACGT\n>c2\n>c3\nAC\n")
    with pytest.raises(HyenaDNAError, match="record 'c2' has no sequence"):
        Genome(path)


def test_corpus_splits_by_contig_and_fraction(real):
    corpus = Corpus(
        [
            GenomeSource(real.ce_fa, val_contigs=["CHROMOSOME_II"], test_contigs=["CHROMOSOME_III"]),
            GenomeSource(real.lambda_fa, weight=2.0, val_fraction=0.1, test_fraction=0.05),
        ]
    )
    val = corpus.intervals("val")
    assert next((iv.genome, iv.contig) for iv in val) == (0, "CHROMOSOME_II")
    lam = [iv for iv in corpus.intervals("train") + val + corpus.intervals("test") if iv.genome == 1]
    size = corpus.genomes[1].contigs[lam[0].contig]
    assert size == 48502  # 10% is 4,850 bases and 5% is 2,425
    assert [(iv.start, iv.end) for iv in lam] == [(0, 41227), (41227, 46077), (46077, size)]
    train_ce = {iv.contig for iv in corpus.intervals("train") if iv.genome == 0}
    assert "CHROMOSOME_II" not in train_ce and "CHROMOSOME_III" not in train_ce
    with pytest.raises(HyenaDNAError, match="val_contigs names contigs not selected"):
        Corpus([GenomeSource(real.ce_fa, exclude=["CHROMOSOME_II"], val_contigs=["CHROMOSOME_II"])])


def test_a_stale_fai_is_detected_and_rebuilt(real, tmp_path):
    """An index left from before the FASTA was edited (the edit kept the index's time stamp
    newer) would read every later record shifted; it is detected and rebuilt."""
    import os
    import warnings

    from hyenadna.data.fasta import read_fasta

    fasta = tmp_path / "ex1.fa"
    records = list(read_fasta(real.ex1_fa))
    fasta.write_text("".join(f">{name}\n{seq}\n" for name, seq in records))
    Genome(fasta)  # builds g.fa.fai
    (name0, seq0), (name1, seq1) = records[:2]
    fasta.write_text(f">{name0}\n{seq0[100:]}\n>{name1}\n{seq1}\n")  # the first record 100 bases shorter
    stamp = fasta.stat()
    os.utime(fasta.with_name("ex1.fa.fai"), ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        genome = Genome(fasta)
    assert any("does not match" in str(w.message) for w in caught)
    assert genome.fetch(name1, 100, 300) == seq1[100:300] and genome.contigs[name0] == len(seq0) - 100
