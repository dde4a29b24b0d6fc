"""Variant effects through a fine-tuned head: hyenadna score --head_model on real VCFs and genomes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.cli import main
from hyenadna.data.genome import Genome
from hyenadna.data.variants import variant_jobs
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.heads.task_model import SequenceModel
from hyenadna.pipelines.score import run_score_vcf

EX1_VCF = Path("/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz")
VT_NORMALIZE = Path("/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz")


@pytest.fixture(scope="module")
def head_folder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16))
    model = SequenceModel(backbone, HeadConfig("multiclass", ["bound", "not bound"], train_length=96))
    torch.nn.init.normal_(model.head.weight, std=1.0)
    folder = tmp_path_factory.mktemp("head") / "model"
    model.save_pretrained(folder)
    return folder


def rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_head_scores_are_prediction_differences(head_folder, real, tmp_path):
    model = load_task_model(head_folder).eval()
    out, annotated = tmp_path / "head.tsv", tmp_path / "head.vcf.gz"
    summary = run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=96, rc_average=True,
                            vcf_output=str(annotated), progress=False)  # fmt: skip
    table = rows(out)
    assert list(table[0])[6:] == ["ref_bound", "alt_bound", "delta_bound", "ref_not_bound", "alt_not_bound",
                                  "delta_not_bound"]  # fmt: skip
    assert summary["alleles"] == len(table) and summary["status"]["ok"] > 100
    jobs = [j for j in variant_jobs(str(VT_NORMALIZE), Genome(str(real.chr20)), 96) if j.status == "ok"][:12]
    direct = predict_sequences(model, [s for j in jobs for s in (j.ref_window, j.alt_window)], rc_average=True)
    ok = [r for r in table if r["status"] == "ok"][:12]
    for k, row in enumerate(ok):
        ref, alt = direct[2 * k], direct[2 * k + 1]
        assert float(row["ref_bound"]) == pytest.approx(ref[0], abs=1e-5)
        assert float(row["delta_not_bound"]) == pytest.approx(alt[1] - ref[1], abs=1e-5)
        assert float(row["delta_bound"]) + float(row["delta_not_bound"]) == pytest.approx(0, abs=1e-5)
    assert np.abs([float(r["delta_bound"]) for r in ok]).max() > 1e-4  # the variants do move the head
    with pysam.VariantFile(str(annotated)) as scored:
        header_keys = set(scored.header.info)
        first = next(r for r in scored if "HYENADNA_DELTA_bound" in r.info)
    assert {"HYENADNA_DELTA_bound", "HYENADNA_DELTA_not_bound"} <= header_keys
    assert first.info["HYENADNA_DELTA_bound"][0] == pytest.approx(float(ok[0]["delta_bound"]), rel=1e-4)


def test_head_scores_on_the_pysam_example_report_mismatches(head_folder, real, tmp_path, capsys):
    """ex1.vcf.gz against ex1.fa: REF mismatches and the rest are statuses, not crashes; the
    window defaults to the head's training length."""
    out = tmp_path / "ex1.tsv"
    main(["score", "--head_model", str(head_folder), "--vcf", str(EX1_VCF), "--genome", str(real.ex1_fa),
          "--output", str(out), "--progress", "false"])  # fmt: skip
    table = rows(out)
    counts = {s: sum(r["status"] == s for r in table) for s in {r["status"] for r in table}}
    assert counts == {"unknown_contig": 120, "out_of_range": 45}  # as the language model's scores report them
    assert all(r["delta_bound"] == r["ref_bound"] == "" for r in table)
    assert '"unknown_contig": 120' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["score", "--head_model", str(head_folder), "--fasta", str(real.ex1_fa), "--output",
              str(tmp_path / "x.tsv")])  # fmt: skip
    assert "hyenadna predict" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", "--model", "tiny-1k", "--head_model", str(head_folder), "--vcf", str(EX1_VCF), "--genome",
              str(real.ex1_fa), "--output", str(tmp_path / "x.tsv")])  # fmt: skip
    assert "either --model" in capsys.readouterr().err


def test_head_scores_report_a_ref_mismatch(head_folder, real, tmp_path):
    genome = Genome(str(real.chr20))
    ref = genome.fetch("20", 30_000_099, 30_000_100).upper()
    wrong = next(b for b in "ACGT" if b != ref)
    vcf = tmp_path / "two.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=20,length=63025520>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"20\t30000100\tgood\t{ref}\t{wrong}\t.\tPASS\t.\n20\t30000100\tbad\t{wrong}\t{ref}\t.\tPASS\t.\n"
    )
    out = tmp_path / "two.tsv"
    summary = run_score_vcf(load_task_model(head_folder), str(vcf), str(real.chr20), str(out), window=96,
                            progress=False)  # fmt: skip
    assert summary["status"] == {"ok": 1, "ref_mismatch": 1}
    good, bad = rows(out)
    assert good["delta_bound"] != "" and bad["status"] == "ref_mismatch" and bad["delta_bound"] == ""
