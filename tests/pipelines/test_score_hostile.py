"""``hyenadna score`` under hostile input (issue 32): each test names the finding it covers."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pysam
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.data.genome import Genome
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel
from hyenadna.inference.sharding import Processes
from hyenadna.io.vcf_annotate import annotate_vcf
from hyenadna.pipelines.score import run_score, run_score_vcf

VT_NORMALIZE = Path("/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz")
EX1_VCF = Path("/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz")
HEADER = "##fileformat=VCFv4.2\n##contig=<ID=20,length=63025520>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
TSV_COLUMNS = "chrom\tpos\tid\tref\talt\tstatus\tll_ref\tll_alt\tllr\n"


@pytest.fixture(scope="module")
def lm() -> HyenaDNA:
    torch.manual_seed(0)
    return HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=256, filter_order=16)).eval()


@pytest.fixture(scope="module")
def chr20(real) -> Genome:
    return Genome(str(real.chr20))


def snv_vcf(path: Path, genome: Genome, positions=(30_000_100, 30_000_200, 30_000_300), extra: str = "") -> Path:
    """SNVs of chr20 at ``positions`` (REF from the genome), then ``extra`` records."""
    lines = []
    for pos in positions:
        ref = genome.fetch("20", pos - 1, pos).upper()
        lines.append(f"20\t{pos}\tv{pos}\t{ref}\t{'C' if ref != 'C' else 'G'}\t.\tPASS\t.\n")
    path.write_text(HEADER + "".join(lines) + extra)
    return path


def scores_tsv(path: Path, vcf: Path) -> Path:
    """A scores TSV for every ALT of ``vcf``, llr = 0.5 (annotate_vcf without a model)."""
    with pysam.VariantFile(str(vcf)) as src:
        rows = [f"{r.chrom}\t{r.pos}\t.\t{r.ref}\t{alt}\tok\t-1\t-0.5\t0.5\n" for r in src for alt in r.alts or ()]
    path.write_text(TSV_COLUMNS + "".join(rows))
    return path


def rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def in_child(work) -> int:
    """Run ``work()`` in a forked process: htslib ``exit()``s on some writes, which must not end pytest."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0
        try:
            work()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 3
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.fixture
def no_model_load(monkeypatch):
    """A refusal must come before the model loads."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("hyenadna.model.load", refuse)
    monkeypatch.setattr("hyenadna.heads.loading.load_task_model", refuse)


CLASHES = {
    "vcf_output is the vcf": ({"vcf_output": "in.vcf"}, "is the input --vcf"),
    "output is the vcf": ({"output": "in.vcf"}, "is the input --vcf"),
    "output is the genome": ({"output": "ex1.fa"}, "is the input --genome"),
    "output is the vcf_output": ({"output": "x.vcf.gz", "vcf_output": "x.vcf.gz"}, "are the same file"),
    "vcf_output is the output's partial": ({"vcf_output": "o.tsv.partial"}, "are the same file"),
    "vcf_output's index is the vcf": ({"vcf_output": "in.gz", "vcf": "in.gz.tbi"}, "is the input --vcf"),
    "a hard link of the vcf": ({"vcf_output": "link.vcf"}, "is the input --vcf"),
    "a folder that does not exist": ({"output": "nowhere/o.tsv"}, "does not exist; create it first"),
    "output is the fasta": ({"fasta": "ex1.fa", "output": "ex1.fa"}, "is the input --fasta"),
    "per_base_output is the fasta": ({"fasta": "ex1.fa", "per_base_output": "ex1.fa"}, "is the input --fasta"),
    "output is the per_base_output": ({"fasta": "ex1.fa", "per_base_output": "o.tsv"}, "are the same file"),
    "output is a file of the model": ({"model": "m", "output": "m/config.json"}, "is the input --model"),
}


@pytest.mark.parametrize("case", list(CLASHES))
def test_an_output_that_is_an_input_or_another_output_is_refused(case, real, tmp_path, monkeypatch, no_model_load):
    """Finding 1: ``--vcf_output`` equal to ``--vcf`` rewrote the input; ``--output X`` with
    ``--vcf_output X`` or ``--per_base_output X`` kept one of the two. Refused before the model
    loads, and every input keeps its bytes."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(EX1_VCF, "in.vcf")  # bgzipped under a plain name: what matters is that it is read
    shutil.copy(real.ex1_fa, "ex1.fa")
    Path("in.gz.tbi").write_text("an input that happens to be named like the index\n")
    os.link("in.vcf", "link.vcf")
    Path("m").mkdir()
    Path("m/config.json").write_text("{}")
    options, message = CLASHES[case]
    kwargs = {"output": "o.tsv", "model": "tiny-1k", "overwrite": True, "progress": False, **options}
    if "fasta" not in kwargs:
        kwargs = {"vcf": "in.vcf", "genome": "ex1.fa", **kwargs}
    before = listing(tmp_path) | listing(tmp_path / "m")
    with pytest.raises(HyenaDNAError, match=message):
        run_score(**kwargs)
    assert listing(tmp_path) | listing(tmp_path / "m") == before


def test_the_command_line_refuses_rewriting_its_vcf_in_one_line(real, tmp_path, capsys):
    """Finding 1, from the command line: one line, exit 2, the VCF unchanged."""
    from hyenadna.cli import main

    vcf = tmp_path / "in.vcf.gz"
    shutil.copy(EX1_VCF, vcf)
    with pytest.raises(SystemExit) as stop:
        main(["score", "--model", "tiny-1k", "--vcf", str(vcf), "--genome", str(real.ex1_fa), "--output",
              str(tmp_path / "o.tsv"), "--vcf_output", str(vcf), "--overwrite"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "is the input --vcf" in err
    assert vcf.read_bytes() == EX1_VCF.read_bytes() and sorted(os.listdir(tmp_path)) == ["in.vcf.gz"]


def test_a_ref_longer_than_the_window_is_not_scored(lm, chr20, tmp_path):
    """Finding 2: a deletion whose REF runs past the window was scored (status ok) with a
    reference window that lacks part of the REF; REF and ALT are now both checked, by the
    language model and by a head."""
    window, room = 64, 32  # REF and ALT get window - window // 2 bases from the variant's start
    pos = 30_000_100
    long_ref = chr20.fetch("20", pos - 1, pos - 1 + 80).upper()
    fits = chr20.fetch("20", pos - 1, pos - 1 + room).upper()
    vcf = tmp_path / "dels.vcf"
    vcf.write_text(
        HEADER + f"20\t{pos}\tlong_del\t{long_ref}\t{long_ref[0]}\t.\tPASS\t.\n"
        f"20\t{pos}\tfits\t{fits}\t{fits[0]}\t.\tPASS\t.\n"
        f"20\t{pos}\tone_over\t{fits}{long_ref[room]}\t{fits[0]}\t.\tPASS\t.\n"
        f"20\t{pos}\tlong_ins\t{fits[0]}\t{fits[0] + 'A' * room}\t.\tPASS\t.\n"
    )
    head = SequenceModel(lm, HeadConfig("multiclass", ["yes", "no"], train_length=window)).eval()
    for model, column in ((lm, "llr"), (head, "delta_yes")):
        out = tmp_path / f"{column}.tsv"
        run_score_vcf(model, str(vcf), str(chr20.path), str(out), window=window, progress=False)
        table = {r["id"]: r for r in rows(out)}
        assert {k: r["status"] for k, r in table.items()} == {
            "long_del": "longer_than_window",
            "fits": "ok",
            "one_over": "longer_than_window",
            "long_ins": "longer_than_window",
        }
        assert table["long_del"][column] == "" and table["fits"][column] != ""


def test_vcf_output_as_bcf_is_written_with_its_csi_index(lm, chr20, tmp_path):
    """Finding 3: ``--vcf_output x.bcf`` always failed (``pysam.bcftools`` never imported) and
    left the unindexed BCF under its final name. Now written, indexed, and queried by region."""
    vcf = snv_vcf(tmp_path / "snvs.vcf", chr20)
    out, bcf = tmp_path / "s.tsv", tmp_path / "s.bcf"
    run_score_vcf(lm, str(vcf), str(chr20.path), str(out), window=64, vcf_output=str(bcf), progress=False)
    assert (tmp_path / "s.bcf.csi").is_file()
    with pysam.VariantFile(str(bcf)) as scored:
        found = list(scored.fetch("20", 30_000_150, 30_000_350))  # needs the index
    assert [r.pos for r in found] == [30_000_200, 30_000_300]
    llr = {int(r["pos"]): float(r["llr"]) for r in rows(out)}
    assert [r.info["HYENADNA_LLR"][0] for r in found] == pytest.approx([llr[r.pos] for r in found], rel=1e-5)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp") or p.endswith(".tmp.csi")]


@pytest.mark.parametrize("name", ["a.bcf", "a.vcf.gz"])
def test_an_indexing_crash_leaves_no_half_output(name, chr20, tmp_path, monkeypatch):
    """Finding 3: indexing fails in some other way than unsorted records: neither the file nor
    an index is left under its final name, and no temporary file."""
    import hyenadna.io.vcf_annotate as annotate

    vcf = snv_vcf(tmp_path / "in.vcf", chr20)
    tsv = scores_tsv(tmp_path / "in.tsv", vcf)

    def crash(path, *args, **kwargs):
        Path(path + (".csi" if name.endswith(".bcf") else ".tbi")).write_text("half an index")
        raise RuntimeError("the indexer crashed")

    monkeypatch.setattr(annotate, "index_variants", crash)
    with pytest.raises(RuntimeError, match="crashed"):
        annotate_vcf(str(vcf), tsv, str(tmp_path / name))
    assert sorted(os.listdir(tmp_path)) == ["in.tsv", "in.vcf"]


def test_unsorted_records_are_written_unindexed_without_a_stale_index(chr20, tmp_path):
    """Finding 3 (kept behaviour): unsorted records are written with a warning and no index;
    the index of the file written there before is removed, not left to describe the new one."""
    sorted_vcf = snv_vcf(tmp_path / "sorted.vcf", chr20)
    unsorted_vcf = snv_vcf(tmp_path / "unsorted.vcf", chr20, (30_000_300, 30_000_100))
    out = tmp_path / "a.vcf.gz"
    annotate_vcf(str(sorted_vcf), scores_tsv(tmp_path / "s.tsv", sorted_vcf), str(out))
    assert (tmp_path / "a.vcf.gz.tbi").is_file()
    with pytest.warns(UserWarning, match="not indexed: its records are not sorted"):
        annotate_vcf(str(unsorted_vcf), scores_tsv(tmp_path / "u.tsv", unsorted_vcf), str(out))
    assert not (tmp_path / "a.vcf.gz.tbi").exists()
    with pysam.VariantFile(str(out)) as scored:
        assert [r.pos for r in scored] == [30_000_300, 30_000_100]


def test_a_contig_or_tag_the_header_lacks_is_declared(lm, chr20, tmp_path):
    """Finding 4: a record on a contig in neither the header nor the genome ended the process
    in htslib's ``exit`` (no message, a ``.tmp`` left); so did undeclared INFO, FORMAT and
    FILTER tags. The contig is declared without a length, the tags as htslib reads them."""
    vcf = tmp_path / "in.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
        f"20\t30000100\ta\t{chr20.fetch('20', 30_000_099, 30_000_100).upper()}\tG,T\t.\tlowq\tDP=3;FLAGX\t"
        "GT:XX\t0/1:5\n"
        "chrZ\t5\tb\tA\tC\t.\tPASS\t.\tGT\t1/1\n"
    )
    out, annotated = tmp_path / "s.tsv", tmp_path / "s.vcf.gz"
    summary = run_score_vcf(lm, str(vcf), str(chr20.path), str(out), window=64, progress=False)
    assert summary["status"]["unknown_contig"] == 1
    contigs = dict(chr20.contigs)
    code = in_child(lambda: annotate_vcf(str(vcf), out, str(annotated), contigs))
    assert code == 0
    assert sorted(os.listdir(tmp_path)) == ["in.vcf", "s.tsv", "s.vcf.gz", "s.vcf.gz.tbi"]
    with pysam.VariantFile(str(annotated)) as scored:
        header = scored.header
        records = list(scored)
    assert header.contigs["chrZ"].length is None and header.contigs["20"].length == 63_025_520
    assert {"DP", "FLAGX", "HYENADNA_LLR"} <= set(header.info) and {"GT", "XX"} <= set(header.formats)
    assert "lowq" in header.filters
    assert [r.chrom for r in records] == ["20", "chrZ"] and len(records[0].info["HYENADNA_LLR"]) == 2
    assert records[0].samples["S1"]["XX"] == "5" and "HYENADNA_LLR" not in records[1].info


def test_labels_that_sanitise_alike_keep_their_own_columns_and_info(lm, chr20, tmp_path):
    """Finding 5: head labels ``a-b`` and ``a_b`` both became ``delta_a_b`` and
    ``INFO/HYENADNA_DELTA_a_b`` (a traceback when the header was written). They are numbered apart."""
    head = SequenceModel(lm, HeadConfig("multiclass", ["a-b", "a_b"], train_length=64))
    torch.nn.init.normal_(head.head.weight, std=1.0)
    head.eval()
    vcf = snv_vcf(tmp_path / "snvs.vcf", chr20)
    out, annotated = tmp_path / "h.tsv", tmp_path / "h.vcf"
    run_score_vcf(head, str(vcf), str(chr20.path), str(out), window=64, vcf_output=str(annotated), progress=False)
    table = rows(out)
    assert list(table[0])[6:] == ["ref_a_b", "alt_a_b", "delta_a_b", "ref_a_b_2", "alt_a_b_2", "delta_a_b_2"]
    with pysam.VariantFile(str(annotated)) as scored:
        descriptions = {key: scored.header.info[key].description for key in scored.header.info}
        records = list(scored)
    assert "change of the a-b probability" in descriptions["HYENADNA_DELTA_a_b"]
    assert "change of the a_b probability" in descriptions["HYENADNA_DELTA_a_b_2"]
    for record, row in zip(records, table):
        assert record.info["HYENADNA_DELTA_a_b"][0] == pytest.approx(float(row["delta_a_b"]), abs=1e-6)
        assert record.info["HYENADNA_DELTA_a_b_2"][0] == pytest.approx(float(row["delta_a_b_2"]), abs=1e-6)
        assert float(row["delta_a_b"]) == pytest.approx(-float(row["delta_a_b_2"]), abs=1e-5)  # softmax of two


def test_symbolic_records_carry_a_declared_end(chr20, tmp_path, capfd):
    """Finding 6: pysam adds INFO/END to ``<DEL>`` records; the header now declares it, so the
    annotated VCF reads back without htslib's warnings."""
    vcf = snv_vcf(tmp_path / "sv.vcf", chr20, (30_000_100,), "20\t30000300\tsv\tA\t<DEL>\t.\tPASS\t.\n")
    out = tmp_path / "sv.scored.vcf"
    annotate_vcf(str(vcf), scores_tsv(tmp_path / "sv.tsv", vcf), str(out), dict(chr20.contigs))
    capfd.readouterr()
    with pysam.VariantFile(str(out)) as scored:
        assert "END" in scored.header.info and scored.header.info["END"].type == "Integer"
        records = list(scored)
    assert "[W::" not in capfd.readouterr().err
    assert records[1].alts == ("<DEL>",) and records[1].stop == 30_000_300
    assert out.read_text().splitlines()[-1].endswith("HYENADNA_LLR=0.5;END=30000300")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 0}, "--batch_size must be positive, got 0"),
        ({"chunk": 0}, "--chunk must be positive, got 0"),
        ({"max_allele": 0}, "--max_allele must be positive, got 0"),
        ({"max_allele": -5}, "--max_allele must be positive, got -5"),
        ({"window": 1}, "--window must be at least 2, got 1"),
        ({"seed": 2**70}, "--seed must lie in"),
        ({"batch_size": 2.5}, "--batch_size must be a whole number"),
        ({"fasta": "x.fa", "vcf": None, "genome": None, "vcf_output": "x.vcf"}, "--vcf_output annotates a --vcf"),
        ({"per_base_output": "b.tsv"}, "--per_base_output goes with --fasta"),
        ({"fasta": "x.fa", "vcf": None}, "--genome goes with --vcf"),
    ],
)
def test_counts_and_combinations_are_checked_before_anything(options, message, tmp_path, no_model_load):
    """Finding 7: every count has its range, and options of the other mode are refused, before
    the model loads or a file is created."""
    kwargs = {"output": str(tmp_path / "o.tsv"), "model": "tiny-1k", "vcf": str(EX1_VCF), "genome": "g.fa"}
    kwargs |= {"progress": False, **options}
    with pytest.raises(HyenaDNAError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run_score(**kwargs)
    assert os.listdir(tmp_path) == []


def test_run_score_vcf_checks_counts_before_any_file(lm, chr20, tmp_path):
    """Finding 7, from Python: a zero batch size or allele length is refused before the lock or
    the partial exists."""
    for options in ({"batch_size": 0}, {"max_allele": 0}, {"chunk": -1}):
        with pytest.raises(HyenaDNAError, match="must be positive"):
            run_score_vcf(lm, str(EX1_VCF), str(chr20.path), str(tmp_path / "o.tsv"), 64, progress=False, **options)
    assert os.listdir(tmp_path) == []


def test_a_cuda_device_without_cuda_is_refused_on_every_path(tmp_path, monkeypatch, no_model_load):
    """Finding 8: ``--device cuda`` on a machine without CUDA is one error, with ``--trainer``
    as without (the processes are not started)."""
    import hyenadna.pipelines.score as score_module

    def no_launch(*args):
        raise AssertionError("processes were started before the device was checked")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(score_module, "launch", no_launch)
    base = {"output": str(tmp_path / "o.tsv"), "model": "tiny-1k", "vcf": str(EX1_VCF), "genome": "g.fa"}
    for trainer in (Processes(), Processes(accelerator="cpu", devices=2)):
        with pytest.raises(HyenaDNAError, match="no CUDA device"):
            run_score(**base, device="cuda", trainer=trainer)
    assert os.listdir(tmp_path) == []
