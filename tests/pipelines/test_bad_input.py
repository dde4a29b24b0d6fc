"""Bad input and interrupted runs give a clear error naming the file, record or value, never a
traceback or a silently wrong result (the reliability issue's numbered points)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hyenadna
from hyenadna import HyenaConfig, HyenaDNAError
from hyenadna.analysis.lm_loss import fasta_lm_loss
from hyenadna.data.labels import LabelledRecord, LabelVocab, read_labelled_table
from hyenadna.pipelines.embed import EmbedInput, run_embed
from hyenadna.training.trainer import resume_checkpoint

REPO = Path(__file__).resolve().parents[2]


def test_regression_targets_must_be_finite_and_labels_and_sequences_not_empty(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("sequence,label\nACGT,1.5\nGGCC,nan\n")
    records = list(read_labelled_table(table))
    vocab = LabelVocab.fit(records, "regression")
    assert vocab.encode(records[0]).tolist() == [1.5]
    with pytest.raises(HyenaDNAError, match="t.csv, line 3: regression targets must be finite"):
        vocab.encode(records[1])
    table.write_text("sequence,label\nACGT,inf\n")
    with pytest.raises(HyenaDNAError, match="finite"):
        vocab.encode(next(iter(read_labelled_table(table))))
    table.write_text("sequence,label\nACGT,a\nGGCC,\nTTAA,b\n")
    with pytest.raises(HyenaDNAError, match="t.csv, line 3: empty label"):
        LabelVocab.fit(read_labelled_table(table), "multiclass")
    table.write_text("sequence,label\nACGT,a\n,b\n")
    with pytest.raises(HyenaDNAError, match="t.csv, line 3: empty sequence"):
        list(read_labelled_table(table))
    with pytest.raises(HyenaDNAError, match="empty sequence"):
        LabelledRecord("r", "", ("a",))


def test_saved_config_must_state_the_fields_the_weights_depend_on(tmp_path):
    hyenadna.load("tiny-1k").save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    del config["l_max"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(HyenaDNAError, match=r"config.json: the model config lacks \['l_max'\]"):
        hyenadna.load(tmp_path / "m")


def test_sizes_are_validated_before_anything_is_allocated():
    with pytest.raises(HyenaDNAError, match="l_max must be at most 33,554,432, got 4,000,000,000"):
        HyenaConfig(l_max=4_000_000_000)
    with pytest.raises(HyenaDNAError, match="beyond any model"):
        HyenaConfig(d_model=1 << 20)


def test_loss_of_records_shorter_than_the_window():
    model = hyenadna.load("tiny-1k")
    results = fasta_lm_loss(model, REPO / "data" / "tf_binding" / "oct4_test.fa", window=1024)
    assert len(results) == 100 and all(r.bases == 200 and r.scored > 150 for r in results)
    assert all(1.0 < r.bits_per_base < 2.5 for r in results)  # an untrained model: near 2 bits


def test_torn_partial_and_checkpoint_are_named(tmp_path):
    fasta = tmp_path / "s.fa"
    fasta.write_text(">a\nACGT\n")
    (tmp_path / "e.h5.partial").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(HyenaDNAError, match="e.h5.partial cannot be read as HDF5.*delete it"):
        run_embed("tiny-1k", str(tmp_path / "e.h5"), EmbedInput(fasta=str(fasta)), resume=True, progress=False)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, run / "checkpoints" / "good.ckpt")
    data = (run / "checkpoints" / "good.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])  # a write cut short
    with pytest.raises(HyenaDNAError, match="last.ckpt is not a complete checkpoint.*--overwrite"):
        resume_checkpoint(run, True)
    assert resume_checkpoint(run, str(run / "checkpoints" / "good.ckpt")).endswith("good.ckpt")


def test_class_path_in_plain_option_dicts_imports_nothing():
    import sys

    from hyenadna.cli import build_parser

    sys.modules.pop("this", None)
    parser = build_parser(["pretrain"])
    cfg = parser.parse_args(["pretrain", "--config", str(REPO / "configs/demo_pretrain.yaml"),
                             "--model.overrides", '{"class_path": "this.X"}'])  # fmt: skip
    overrides = parser.instantiate(cfg)["pretrain"].model.overrides
    assert overrides == {"class_path": "this.X"} and "this" not in sys.modules
    with pytest.raises(HyenaDNAError, match="unknown HyenaConfig field"):
        hyenadna.load("tiny-1k", **overrides)


def test_score_statuses_for_n_regions_odd_alleles_and_pos_0_and_a_vcf_without_contigs(tmp_path):
    """A variant in an N stretch, an ALT of X, a record at POS 0: each a status of its own, the
    run goes on; a VCF without ##contig lines still gets its annotated copy (contigs from the
    genome)."""
    import pysam

    from hyenadna.pipelines.score import run_score_vcf

    genome = tmp_path / "g.fa"
    seq = "ACGTTGCAAC" * 5 + "N" * 20 + "GGATCCAATT" * 5
    genome.write_text(">chrT\n" + seq + "\n")
    vcf = tmp_path / "v.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "chrT\t0\tpos0\tA\tC\t.\t.\t.\n"
        f"chrT\t12\tok\t{seq[11]}\tA\t.\t.\t.\n"
        f"chrT\t20\tbad_alt\t{seq[19]}\tX\t.\t.\t.\n"
        "chrT\t55\tin_n\tN\tA\t.\t.\t.\n"
        "chrT\t56\tn_ref\tA\tC\t.\t.\t.\n"  # the genome has N there
    )
    model = hyenadna.load("tiny-1k")
    out, annotated = tmp_path / "s.tsv", tmp_path / "a.vcf.gz"
    summary = run_score_vcf(model, str(vcf), str(genome), str(out), window=32, vcf_output=str(annotated),
                            progress=False)  # fmt: skip
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    status = {row[2]: row[5] for row in rows}
    assert status == {"ok": "ok", "in_n": "invalid_allele", "n_ref": "n_region", "bad_alt": "invalid_allele",
                      "pos0": "out_of_range"}  # fmt: skip
    assert summary["alleles"] == 5 and rows[1][8] != ""
    with pysam.VariantFile(str(annotated)) as variants:
        assert variants.header.contigs["chrT"].length == len(seq)
        assert [r.id for r in variants.fetch("chrT", 10, 60)] == ["ok", "bad_alt", "in_n", "n_ref"]


def test_a_failing_checkpoint_write_leaves_no_file_under_its_final_name(tmp_path, monkeypatch):
    """Fault injection: the disk fills while a checkpoint is written; the run stops naming the
    file, and no truncated checkpoint is left where --resume would take it."""
    import errno

    from hyenadna.data.corpus import GenomeSource
    from hyenadna.pipelines.pretrain import run_pretrain
    from hyenadna.training.options import PretrainData, TrainerOptions

    real_save, calls = torch.save, []

    def disk_full_on_the_second_checkpoint(obj, f, *args, **kwargs):
        calls.append(str(f))
        if len(calls) == 2:
            Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_the_second_checkpoint)
    data = PretrainData(genomes=[GenomeSource(str(REPO / "data" / "lambda_virus.fa"))], length=64, batch_size=2,
                        samples_per_epoch=16)  # fmt: skip
    trainer = TrainerOptions(max_steps=6, accelerator="cpu", devices=1, progress_bar=False, checkpoint_every_n_steps=2)
    with pytest.raises(HyenaDNAError, match="cannot write checkpoint .*No space left on device"):
        run_pretrain(data, trainer=trainer, output=str(tmp_path / "run"))
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step2.ckpt"]  # the complete one; nothing torn, no temporary left
    assert resume_checkpoint(tmp_path / "run", str(tmp_path / "run" / "checkpoints" / "step2.ckpt"))


def test_undecodable_and_truncated_tables_and_mismatched_weights_are_named(tmp_path):
    import gzip

    from hyenadna.data.intervals import read_regions

    binary = tmp_path / "bin.bed"
    binary.write_bytes(b"chr1\t1\t5\n\xff\xfe\x00binary")
    with pytest.raises(HyenaDNAError, match=r"bin.bed: not UTF-8 text after line \d \(byte 0xff\)"):
        list(read_regions(binary))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sequence,label\nACGT,caf\xe9\n".encode("latin-1"))
    with pytest.raises(HyenaDNAError, match="latin.csv: not UTF-8 text"):
        list(read_labelled_table(latin))
    data = gzip.compress(b"chr1\t10\t20\n" * 2000)
    cut = tmp_path / "cut.bed.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(HyenaDNAError, match="cut.bed.gz: the compressed file is cut short"):
        list(read_regions(cut))
    hyenadna.load("tiny-1k").save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "d_inner": 256}))
    with pytest.raises(HyenaDNAError, match=r"model.safetensors: weights do not match the config: .*fc1.* \(512,"):
        hyenadna.load(tmp_path / "m")


def test_a_bam_index_older_than_its_bam_is_refused_for_regions(real, tmp_path):
    import os
    import shutil

    from hyenadna.data.bam import iter_reads

    bam = tmp_path / "ex1.bam"
    shutil.copy(real.ex1_bam, bam)
    shutil.copy(str(real.ex1_bam) + ".bai", str(bam) + ".bai")
    assert list(iter_reads(bam, "chr1:100-200"))
    stamp = bam.stat()
    os.utime(str(bam) + ".bai", ns=(stamp.st_atime_ns, stamp.st_mtime_ns - 10**9))  # the BAM rewritten since
    with pytest.raises(HyenaDNAError, match=r"ex1.bam.bai is older than .*ex1.bam.*samtools index"):
        list(iter_reads(bam, "chr1:100-200"))


def test_a_non_ascii_fasta_header_is_named(tmp_path):
    from hyenadna.data.fasta import read_fasta
    from hyenadna.data.genome import Genome

    fasta = tmp_path / "h.fa"
    fasta.write_bytes(b">r\xe9cord\nACGT\n")
    with pytest.raises(HyenaDNAError, match="h.fa"):
        list(read_fasta(fasta))
    with pytest.raises(HyenaDNAError, match="h.fa"):
        genome = Genome(fasta)
        genome.fetch(next(iter(genome.contigs)), 0, 2)
