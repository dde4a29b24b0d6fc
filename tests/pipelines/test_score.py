"""Sequence likelihoods (model.score) and hyenadna score on real VCFs against real genomes."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyfaidx
import pysam
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.data.tokenizer import A_ID, CharacterTokenizer, reverse_complement
from hyenadna.pipelines.score import run_score_fasta, run_score_vcf

VT_NORMALIZE = Path("/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz")
EX1_VCF = Path("/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz")


@pytest.fixture(scope="module")
def model() -> HyenaDNA:
    torch.manual_seed(0)
    return HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16)).eval()


def rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def direct_per_base(model: HyenaDNA, seq: str) -> np.ndarray:
    ids = CharacterTokenizer().encode(seq)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None])[0, :-1, A_ID : A_ID + 4].double(), -1)
    out = np.full(len(seq), np.nan)
    for t in range(1, len(seq)):
        if seq[t] in "ACGT":
            out[t] = float(logp[t - 1, "ACGT".index(seq[t])])
    return out


def test_score_equals_a_direct_computation(model):
    rng = np.random.default_rng()
    seqs = ["".join(rng.choice(list("ACGT"), size=n)) for n in (40, 300, 7)] + ["ACGTNNACGTAC"]
    per_base = model.score(seqs, reduce="none", batch_size=3)
    for seq, got in zip(seqs, per_base):
        expected = direct_per_base(model, seq)
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        assert np.nanmax(np.abs(got - expected)) <= 1e-5 * np.nanmax(np.abs(expected))
    sums, means = model.score(seqs, "sum"), model.score(seqs, "mean")
    assert np.allclose(sums, [np.nansum(direct_per_base(model, s)) for s in seqs], rtol=1e-5)
    assert np.allclose(means, [np.nanmean(direct_per_base(model, s)) for s in seqs], rtol=1e-5)
    _, entropy = model.score(seqs[:1], "none", return_entropy=True)
    assert np.isnan(entropy[0][0]) and np.all((entropy[0][1:] >= 0) & (entropy[0][1:] <= 2 + 1e-9))
    with pytest.raises(HyenaDNAError, match="sequence 0 has 1 bases; scoring takes 2 to 1,024"):
        model.score(["A"])


def test_reverse_complement_averaging_is_strand_symmetric(model):
    rng = np.random.default_rng()
    seqs = ["".join(rng.choice(list("ACGT"), size=n)) for n in (50, 123)]
    forward = model.score(seqs, rc_average=True)
    reverse = model.score([reverse_complement(s) for s in seqs], rc_average=True)
    assert np.allclose(forward, reverse, rtol=1e-6)
    assert np.allclose(forward, (model.score(seqs) + model.score([reverse_complement(s) for s in seqs])) / 2)


def test_real_indels_on_chr20_score_like_the_model_directly(model, real, tmp_path):
    out = tmp_path / "indels.tsv"
    summary = run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=256, progress=False)
    assert summary == {"alleles": 194, "status": {"ok": 194}, "output": str(out)}
    table = rows(out)
    fasta = pyfaidx.Fasta(str(real.chr20))["20"]
    for row in table[:: len(table) // 5]:
        pos0, ref, alt = int(row["pos"]) - 1, row["ref"], row["alt"]
        ref_window = str(fasta[pos0 - 128 : pos0 - 128 + 256])
        after = pos0 + len(ref)
        alt_window = str(fasta[pos0 - 128 : pos0]) + alt + str(fasta[after : after + 128 - len(alt)])
        assert ref_window[128 : 128 + len(ref)] == ref and len(alt_window) == 256
        ll_ref, ll_alt = np.nanmean(direct_per_base(model, ref_window)), np.nanmean(direct_per_base(model, alt_window))
        assert float(row["ll_ref"]) == pytest.approx(ll_ref, rel=1e-4)
        assert float(row["llr"]) == pytest.approx(ll_alt - ll_ref, abs=1e-5)


def test_multiallelic_split_ref_mismatch_and_vcf_output(model, real, tmp_path):
    fasta = pyfaidx.Fasta(str(real.chr20))["20"]
    base = lambda pos: str(fasta[pos - 1 : pos]).upper()  # noqa: E731 (1-based VCF position)
    wrong = next(b for b in "ACGT" if b != base(30_000_200))
    vcf = tmp_path / "snvs.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=20,length=63025520>\n##contig=<ID=21>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"20\t30000100\trs1\t{base(30_000_100)}\t{','.join(b for b in 'ACGT' if b != base(30_000_100))}\t.\tPASS\t.\n"
        f"20\t30000200\tbad\t{wrong}\tA\t.\tPASS\t.\n"
        f"20\t30000300\tsv\t{base(30_000_300)}\t<DEL>\t.\tPASS\t.\n"
        f"21\t100\tother\tA\tC\t.\tPASS\t.\n"
    )
    out, annotated = tmp_path / "snvs.tsv", tmp_path / "snvs.scored.vcf.gz"
    summary = run_score_vcf(
        model, str(vcf), str(real.chr20), str(out), 128, rc_average=True, vcf_output=str(annotated), progress=False
    )
    assert summary["status"] == {"ok": 3, "ref_mismatch": 1, "symbolic_allele": 1, "unknown_contig": 1}
    table = rows(out)
    assert [(r["id"], r["alt"], r["status"]) for r in table][:3] == [
        ("rs1", a, "ok") for a in "ACGT" if a != base(30_000_100)
    ]
    assert table[3]["status"] == "ref_mismatch" and table[3]["llr"] == ""
    with pysam.VariantFile(str(annotated)) as scored:
        records = list(scored)
    assert len(records) == 4
    assert records[0].info["HYENADNA_LLR"] == pytest.approx([float(r["llr"]) for r in table[:3]], rel=1e-5)
    assert "HYENADNA_LLR" not in records[1].info


def test_pysam_example_vcf_mismatches_are_reported_not_fatal(model, real, tmp_path):
    expected = {"unknown_contig": 0, "out_of_range": 0}
    genome = pysam.FastaFile(str(real.ex1_fa))
    lengths = dict(zip(genome.references, genome.lengths))
    alleles = 0
    with pysam.VariantFile(str(EX1_VCF)) as vcf:
        for record in vcf:
            n = len(record.alts)
            alleles += n
            if record.chrom not in lengths:
                expected["unknown_contig"] += n
            elif record.pos - 1 + len(record.ref) > lengths[record.chrom]:
                expected["out_of_range"] += n
    out = tmp_path / "ex1.tsv"
    summary = run_score_vcf(model, str(EX1_VCF), str(real.ex1_fa), str(out), window=64, progress=False)
    assert summary["status"] == expected and summary["alleles"] == alleles == len(rows(out))


def test_stopped_run_resumes(model, real, tmp_path, monkeypatch):
    import hyenadna.pipelines.score as score_module

    full = tmp_path / "full.tsv"
    run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(full), window=128, chunk=32, progress=False)
    text = full.read_text()
    out = tmp_path / "part.tsv"
    partial = tmp_path / "part.tsv.partial"
    real_score, calls = score_module.score_windows, []

    def stopped_on_the_third_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real_score(*args)

    monkeypatch.setattr(score_module, "score_windows", stopped_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=128, chunk=32, progress=False)
    monkeypatch.setattr(score_module, "score_windows", real_score)
    assert not out.exists() and len(partial.read_text().splitlines()) == 65  # header and two chunks
    with partial.open("a") as fh:
        fh.write(text.splitlines(keepends=True)[65][:10])  # and a torn line
    with pytest.raises(HyenaDNAError, match="cannot resume, its options differ"):
        run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=64, resume=True, progress=False)
    summary = run_score_vcf(
        model, str(VT_NORMALIZE), str(real.chr20), str(out), window=128, chunk=32, resume=True, progress=False
    )
    assert summary["alleles"] == 194 and out.read_text() == text and not partial.exists()
    assert not (tmp_path / "part.tsv.partial.json").exists() and not (tmp_path / "part.tsv.lock").exists()
    with pytest.raises(HyenaDNAError, match="exists; pass overwrite"):
        run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=128, progress=False)


def test_a_second_run_on_the_same_output_stops_at_once(model, real, tmp_path):
    from hyenadna.io.atomic import run_lock

    out = tmp_path / "s.tsv"
    with run_lock(out), pytest.raises(HyenaDNAError, match="another run is writing"):
        run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=128, progress=False)
    assert not (tmp_path / "s.tsv.partial").exists()


def test_resume_with_another_model_or_an_edited_input_is_refused(model, real, tmp_path):
    import shutil

    vcf = tmp_path / "v.vcf.gz"
    shutil.copy(VT_NORMALIZE, vcf)
    out = tmp_path / "s.tsv"
    (tmp_path / "s.tsv.partial").write_text("x\n")
    (tmp_path / "s.tsv.partial.json").write_text("{}")
    with pytest.raises(HyenaDNAError, match=r"cannot resume, its files, model, options .*, weights differ"):
        run_score_vcf(model, str(vcf), str(real.chr20), str(out), window=128, resume=True, progress=False)


def test_fasta_mode(model, tmp_path):
    fasta = tmp_path / "s.fa"
    fasta.write_text(">a\nACGTACGTTT\n>b desc\nGGNNCCA\n")
    run_score_fasta(model, str(fasta), str(tmp_path / "s.tsv"), rc_average=True)
    table = rows(tmp_path / "s.tsv")
    assert [(r["name"], r["length"], r["scored"]) for r in table] == [("a", "10", "9"), ("b", "7", "4")]
    assert float(table[1]["ll_sum"]) == pytest.approx(np.nansum(direct_per_base(model, "GGNNCCA")), rel=1e-5)
    both = float(model.score("ACGTACGTTT", rc_average=True)[0])
    assert float(table[0]["ll_mean_both_strands"]) == pytest.approx(both, rel=1e-5)


def test_vcf_must_exist_and_match_options(model, real, tmp_path):
    with pytest.raises(HyenaDNAError, match="VCF file not found"):
        run_score_vcf(model, str(tmp_path / "none.vcf"), str(real.chr20), str(tmp_path / "o.tsv"), progress=False)
    with pytest.raises(HyenaDNAError, match=r"window must lie in \[2, 1024\] \(the model.s longest input\)"):
        run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(tmp_path / "o.tsv"), window=5000, progress=False)
    assert shutil.which("samtools")  # keeps the Debian test data installs honest


def test_score_command_line(real, tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "cli.tsv"
    args = ["score", "--model", "tiny-1k", "--vcf", str(VT_NORMALIZE), "--genome", str(real.chr20)]
    args += ["--window", "128", "--output", str(out), "--progress", "false"]
    proc = subprocess.run([sys.executable, str(repo / "cli.py"), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"ok": 194' in proc.stdout and len(rows(out)) == 194
    proc = subprocess.run([sys.executable, str(repo / "cli.py"), "score", "--model", "tiny-1k", "--output", "x.tsv"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "give either --vcf (with --genome) or --fasta" in proc.stderr
