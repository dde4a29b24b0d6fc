"""Files under hostile input (issue 32): the one place that plans a command's files, validation
before anything is created, the CLI's one error path, chunk folders that a refused run does not
leave behind, resume across device counts, and regions of contigs with ``:`` in their names."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_errors import error_line
from interrupts import killed_on_call

from hyenadna import HyenaDNAError
from hyenadna.data.genome import Genome
from hyenadna.inference.sharding import Processes, Rank, alone, chunked, run_chunks
from hyenadna.io.file_plan import FilePlan, inside, safe_name, unique_names
from hyenadna.pipelines.embed import EmbedInput, run_embed

REPO = Path(__file__).resolve().parents[2]
OCT4 = REPO / "data" / "tf_binding" / "oct4_test.fa"


def few_records(path: Path, n: int = 10) -> Path:
    """The first ``n`` records of the bundled Oct4 test set (real ChIP-seq peaks)."""
    lines = OCT4.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(">")]
    path.write_text("\n".join(lines[: starts[n]]) + "\n")
    return path


# -- file names from user text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [("../../../x", "x"), ("/etc/passwd", "etc_passwd"), ("..", "unnamed"), (".hidden", "hidden"),
     ("a b;c", "a_b_c"), ("chr1:100-200(+)", "chr1_100-200_+"), ("ok_name-1.2", "ok_name-1.2"), ("", "unnamed")],
)  # fmt: skip
def test_safe_name_is_one_component_that_stays_in_its_folder(tmp_path, text, name):
    assert safe_name(text) == name
    assert inside(tmp_path, safe_name(text) + ".png").parent == tmp_path


def test_unique_names_number_clashes_and_inside_refuses_links_out(tmp_path):
    assert unique_names(["a/b", "a_b", "A_B", ".."]) == ["a_b", "a_b_2", "A_B_3", "unnamed"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "logo.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(HyenaDNAError, match="would leave the output folder"):
        inside(tmp_path / "out", "logo.png")
    with pytest.raises(HyenaDNAError, match="would leave the output folder"):
        inside(tmp_path / "out", "../x.png")


# -- the plan of a command's files -----------------------------------------------------------------


def test_an_output_equal_to_an_input_by_any_name_is_refused(tmp_path):
    data = tmp_path / "in.vcf"
    data.write_text("x")
    os.link(data, tmp_path / "hard.vcf")
    (tmp_path / "soft.vcf").symlink_to(data)
    for name in ("in.vcf", "hard.vcf", "soft.vcf", "./sub/../in.vcf"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        plan = FilePlan("score")
        plan.input("--vcf", data)
        plan.output("--vcf_output", tmp_path / name)
        with pytest.raises(HyenaDNAError, match="--vcf_output .* is the input --vcf"):
            plan.check()
    plan = FilePlan("embed")
    plan.input("--input.fasta", tmp_path / "in.vcf.partial")
    plan.output("--output", data, companions=(".partial",))
    with pytest.raises(HyenaDNAError, match=r"in.vcf.partial\) .* is the input --input.fasta"):
        plan.check()
    assert data.read_text() == "x"


def test_two_outputs_may_not_share_a_file_or_a_companion(tmp_path):
    plan = FilePlan("explain")
    plan.output("--output", tmp_path / "a.h5", companions=(".parts",))
    plan.output("--ism_tsv", tmp_path / "a.h5")
    with pytest.raises(HyenaDNAError, match="--ism_tsv and --output are the same file"):
        plan.check()
    plan = FilePlan("score")
    plan.output("--output", tmp_path / "a.tsv", companions=(".partial",))
    plan.output("--per_base_output", tmp_path / "a.tsv.partial")
    with pytest.raises(HyenaDNAError, match="same file"):
        plan.check()
    plan = FilePlan("score")
    plan.output("--output", tmp_path / "a.tsv", companions=(".partial", ".lock"))
    plan.output("--vcf_output", tmp_path / "b.vcf.gz", companions=(".tbi",))
    plan.check()  # distinct files pass


def test_outputs_need_an_existing_folder_of_the_right_kind(tmp_path):
    (tmp_path / "file").write_text("x")
    plan = FilePlan("explain")
    with pytest.raises(HyenaDNAError, match=r"the folder of --ism_tsv .* does not exist; create it first"):
        plan.output("--ism_tsv", tmp_path / "no" / "such" / "x.tsv")
    with pytest.raises(HyenaDNAError, match="--output .* is a folder; give a file path"):
        plan.output("--output", tmp_path)
    with pytest.raises(HyenaDNAError, match="--plots .* is a file; give a folder"):
        plan.output("--plots", tmp_path / "file", folder=True)
    with pytest.raises(HyenaDNAError, match="is not a folder"):
        plan.output("--output", tmp_path / "file" / "x.h5")
    assert not (tmp_path / "no").exists()
    plan = FilePlan("finetune")
    plan.input("--data.train", tmp_path / "run" / "train.csv")
    plan.output("--output", tmp_path / "run", folder=True, make_parent=True)
    plan.check()  # a run folder that is not cleared (a fresh run, --resume) may hold its data
    plan.output("--output", tmp_path / "run", folder=True, make_parent=True, cleared=True)
    with pytest.raises(HyenaDNAError, match="holds the input --data.train .* and this run may clear it"):
        plan.check()


def test_what_is_not_a_plain_file_or_too_long_a_name_is_never_an_output(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(HyenaDNAError, match="is not a regular file"):
        FilePlan("embed").output("--output", tmp_path / "pipe")
    with pytest.raises(HyenaDNAError, match="is not a regular file"):
        FilePlan("score").output("--output", "/dev/null")
    (tmp_path / "x.h5.lock").mkdir()
    with pytest.raises(HyenaDNAError, match="x.h5.lock, which this run writes, is a folder"):
        FilePlan("embed").output("--output", tmp_path / "x.h5", companions=(".partial", ".lock"))
    with pytest.raises(HyenaDNAError, match="the file name .* is too long"):
        FilePlan("embed").output("--output", tmp_path / ("x" * 240), companions=(".partial",))


def test_tilde_is_a_folder_name_and_indexes_and_folder_files_are_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~").mkdir()
    (tmp_path / "~" / "in.fa").write_text(">a\nACGT\n")
    plan = FilePlan("embed")
    plan.input("--input.fasta", "~/in.fa")  # the shell expands ~; a ~ that reaches us is a folder's name
    plan.output("--output", tmp_path / "~" / "in.fa")
    with pytest.raises(HyenaDNAError, match="is the input --input.fasta"):
        plan.check()
    with pytest.raises(HyenaDNAError, match="does not exist; create it first"):
        FilePlan("embed").output("--output", "~/no/x.h5")
    (tmp_path / "~" / "in.fa.fai").write_text("a\t4\t3\t4\t5\n")
    (tmp_path / "gb" / "test" / "MafK").mkdir(parents=True)
    (tmp_path / "gb" / "test" / "MafK" / "0.txt").write_text("ACGT")
    for inp, out, option in (("~/in.fa", "~/in.fa.fai", "--genome"), ("gb", "gb/test/MafK/0.txt", "--input")):
        plan = FilePlan("score")
        plan.input(option, inp)
        plan.output("--output", out)
        with pytest.raises(HyenaDNAError, match=f"is the input {option} "):
            plan.check()
    with pytest.raises(HyenaDNAError, match="--reader.genome must be a path, got 5"):
        FilePlan("predict").input("--reader.genome", 5)


def test_what_a_stopped_run_left_is_never_passed_over(tmp_path):
    from hyenadna.inference.sharding import continues_chunks

    out = tmp_path / "e.h5"
    assert not continues_chunks(out, distributed=False, resume=False)
    assert continues_chunks(out, distributed=True, resume=False)
    (tmp_path / "e.h5.parts").mkdir()
    for distributed in (False, True):
        with pytest.raises(HyenaDNAError, match=r"e.h5.parts is left from a stopped run; pass --resume"):
            continues_chunks(out, distributed, resume=False)
        assert continues_chunks(out, distributed, resume=True)
    (tmp_path / "e.h5.partial").write_text("x")
    with pytest.raises(HyenaDNAError, match="are both left from stopped runs"):
        continues_chunks(out, False, resume=True)
    (tmp_path / "e.h5.parts").rmdir()
    with pytest.raises(HyenaDNAError, match=r"e.h5.partial is left from a stopped run; pass --resume"):
        continues_chunks(out, True, resume=False)
    assert not continues_chunks(out, False, resume=True)  # the one-process path continues its own .partial


# -- the command line's one error path -------------------------------------------------------------


def test_bad_option_values_are_one_line_naming_the_option(capsys, tmp_path):
    fasta = few_records(tmp_path / "a.fa", 2)
    base = ["predict", "--model", str(tmp_path), "--input", str(fasta), "--output", str(tmp_path / "o.tsv")]
    assert "tiling window must be 0 (off) or at least 2 bases, got -3" in error_line(
        capsys, [*base, "--tiling.window", "-3"]
    )
    assert "--tiling.window: expected int. Got value: 100.5" in error_line(capsys, [*base, "--tiling.window", "100.5"])
    assert "--batch_size: expected int" in error_line(capsys, [*base, "--batch_size", "abc"])
    assert "unrecognized arguments: --overw" in error_line(capsys, [*base, "--overw"])  # no abbreviations
    assert "--batch_size must be positive, got 0" in error_line(capsys, [*base, "--batch_size", "0"])
    assert not (tmp_path / "o.tsv.parts").exists() and not (tmp_path / "o.tsv.lock").exists()


def test_a_device_this_machine_lacks_is_one_line(capsys, tmp_path):
    fasta = few_records(tmp_path / "a.fa", 2)
    argv = ["embed", "--model", "tiny-1k", "--input.fasta", str(fasta), "--output", str(tmp_path / "e.h5")]
    assert "device 'cuda:99'" in error_line(capsys, [*argv, "--device", "cuda:99"])
    assert "unknown device 'tpu0'" in error_line(capsys, [*argv, "--device", "tpu0"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa"]


# -- chunk folders: nothing left by a refused run, a named one by a stopped run ---------------------


def test_a_run_failing_before_its_first_chunk_leaves_no_folder_and_a_later_failure_says_how_to_resume(tmp_path):
    out = tmp_path / "out.tsv"
    rank = alone("cpu")

    def failing_at(k_bad: int):
        calls = iter(range(100))

        def writer(items):
            if next(calls) == k_bad:
                raise HyenaDNAError("record 'x' is bad")
            return lambda tmp: Path(tmp).write_text("".join(f"{i}\n" for i in items))

        return writer

    class Bar:
        update = close = staticmethod(lambda *a: None)

    def run(k_bad: int, resume: bool = False):
        join = lambda paths, tmp: Path(tmp).write_text("".join(p.read_text() for p in paths))  # noqa: E731
        return run_chunks(out, rank, {"chunk": 2}, ".tsv", resume, False, chunked(range(6), 2), failing_at(k_bad),
                          join, Bar())  # fmt: skip

    with pytest.raises(HyenaDNAError, match="^record 'x' is bad$"):
        run(0)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no .parts, no .lock
    with pytest.raises(HyenaDNAError, match=r"record 'x' is bad; .*out.tsv.parts keeps 1 finished chunk\(s\): "
                                            "--resume continues it while the inputs"):  # fmt: skip
        run(1)
    assert run(99, resume=True)
    assert out.read_text().split() == [str(i) for i in range(6)]


def test_refused_options_of_predict_leave_nothing(tmp_path, capsys):
    fasta = few_records(tmp_path / "a.fa", 2)
    for option, value in (("--chunk", "0"), ("--batch_size", "-1")):
        error_line(capsys, ["predict", "--model", str(tmp_path / "m"), "--input", str(fasta), "--output",
                            str(tmp_path / "o.tsv"), option, value])  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa"]


# -- resume across device counts -------------------------------------------------------------------


def test_chunks_of_a_stopped_two_process_embed_are_kept_by_a_one_process_resume(tmp_path, monkeypatch):
    import hyenadna.pipelines.embed as embed_module

    fasta = few_records(tmp_path / "a.fa", 10)
    kwargs = dict(model="tiny-1k", input=EmbedInput(fasta=str(fasta)), chunk=3, device="cpu", progress=False)
    straight = tmp_path / "straight.h5"
    run_embed(output=str(straight), **kwargs)
    out = tmp_path / "e.h5"
    # rank 0 of 2, stopped by Ctrl-C on its second chunk (chunk 2): the folder keeps chunk 0
    monkeypatch.setattr(embed_module, "launch", lambda trainer: Rank(0, 2, "cpu", lambda: None))
    real_write = embed_module._write_chunk
    monkeypatch.setattr(embed_module, "_write_chunk", killed_on_call(real_write, 2))
    with pytest.raises(KeyboardInterrupt):
        run_embed(output=str(out), trainer=Processes(accelerator="cpu", devices=2), **kwargs)
    monkeypatch.undo()
    parts = tmp_path / "e.h5.parts"
    assert sorted(p.name for p in parts.glob("chunk*")) == ["chunk000000000.h5"]
    with pytest.raises(HyenaDNAError, match=r"cannot resume, its chunk \(was 3, now 4\) differ .* or delete it"):
        run_embed(output=str(out), resume=True, **{**kwargs, "chunk": 4})
    computed = []
    monkeypatch.setattr(embed_module, "_write_chunk", lambda h5, b, t, records, *a: computed.append(len(records))
                        or real_write(h5, b, t, records, *a))  # fmt: skip
    result = run_embed(output=str(out), resume=True, **kwargs)
    assert result["records"] == 10 and computed == [3, 3, 1]  # chunks 1 to 3: chunk 0 was kept
    assert not parts.exists()
    with h5py.File(straight) as a, h5py.File(out) as b:
        np.testing.assert_allclose(b["embeddings"][:], a["embeddings"][:], rtol=1e-5, atol=1e-6)
        assert list(b["names"].asstr()[:]) == list(a["names"].asstr()[:])


def test_a_one_process_partial_is_not_shared_out(tmp_path):
    fasta = few_records(tmp_path / "a.fa", 2)
    (tmp_path / "e.h5.partial").write_bytes(b"left by one process")
    with pytest.raises(HyenaDNAError, match="left by a run in one process, which only one process can continue"):
        run_embed("tiny-1k", str(tmp_path / "e.h5"), EmbedInput(fasta=str(fasta)), resume=True,
                  trainer=Processes(accelerator="cpu", devices=2))  # fmt: skip
    assert (tmp_path / "e.h5.partial").read_bytes() == b"left by one process"


# -- regions ---------------------------------------------------------------------------------------


def test_contigs_with_colons_can_be_named_in_a_region(tmp_path):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">HLA-A*01:01\nACGTACGTAC\n>chr1\nGGGGCCCCAA\n>chr1:1-4\nTTTT\n")
    genome = Genome(fasta)
    assert genome.region("HLA-A*01:01") == ("HLA-A*01:01", 0, 10)
    assert genome.region("{HLA-A*01:01}:2-5") == ("HLA-A*01:01", 1, 5)
    assert genome.region("HLA-A*01:01:2-5") == ("HLA-A*01:01", 1, 5)
    assert genome.region("chr1:2-1,0") == ("chr1", 1, 10)
    assert genome.region("{chr1:1-4}") == ("chr1:1-4", 0, 4)
    with pytest.raises(HyenaDNAError, match="ambiguous"):
        genome.region("chr1:1-4")
    with pytest.raises(HyenaDNAError, match="no contig 'chr2'"):
        genome.region("chr2:1-4")


def test_an_embed_option_its_input_ignores_is_refused(tmp_path):
    fasta = few_records(tmp_path / "a.fa", 2)
    out = str(tmp_path / "e.h5")
    for source, message in (
        (EmbedInput(fasta=str(fasta), region="chr1:1-50"), "--input.region restricts"),
        (EmbedInput(fasta=str(fasta), genome=str(fasta)), "--input.genome applies to a --input.bed"),
        (EmbedInput(fasta=str(fasta), window=0), "--input.window must be positive, got 0"),
        (EmbedInput(fasta=str(fasta), window=10, stride=-1), "--input.stride must be positive, got -1"),
        (EmbedInput(fasta=str(fasta), stride=5), "--input.stride needs --input.window"),
        (EmbedInput(bam=str(fasta), min_mapq=-1), "--input.min_mapq must lie in 0..255"),
    ):
        with pytest.raises(HyenaDNAError, match=message):
            run_embed("tiny-1k", out, source, device="cpu")
    with pytest.raises(HyenaDNAError, match="--seed must lie in 0..9223372036854775807, got 18446744073709551616"):
        run_embed("tiny-1k", out, EmbedInput(fasta=str(fasta)), device="cpu", seed=2**64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa"]


# -- every command: an output that is one of its inputs is refused, the input untouched -------------


def commands_writing_over_an_input(tmp_path: Path) -> list[tuple[list[str], Path]]:
    """(argv, the input it names as an output) for every command that writes files."""
    fasta = few_records(tmp_path / "a.fa", 4)
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nx\t5\t.\tA\tC\t.\t.\t.\n")
    run = tmp_path / "run"
    run.mkdir()
    table = run / "train.csv"
    table.write_text("sequence,label\nACGTACGT,a\nTTTTACGT,b\n")
    attributions = tmp_path / "motifs" / "motifs.json"
    attributions.parent.mkdir()
    attributions.write_text("{}")
    f = str(fasta)
    return [
        (["embed", "--model", "tiny-1k", "--input.fasta", f, "--output", f], fasta),
        (["predict", "--model", str(tmp_path), "--input", f, "--output", f], fasta),
        (["score", "--model", "tiny-1k", "--fasta", f, "--output", f], fasta),
        (
            [
                "score",
                "--model",
                "tiny-1k",
                "--vcf",
                str(vcf),
                "--genome",
                f,
                "--output",
                str(tmp_path / "s.tsv"),
                "--vcf_output",
                str(vcf),
            ],
            vcf,
        ),
        (["score", "--model", "tiny-1k", "--vcf", str(vcf), "--genome", f, "--output", str(vcf)], vcf),
        (["explain", "--model", "tiny-1k", "--input", f, "--output", f], fasta),
        (
            [
                "explain",
                "--model",
                "tiny-1k",
                "--input",
                f,
                "--output",
                str(tmp_path / "x.h5"),
                "--ism_tsv",
                f,
                "--methods",
                "[ism]",
            ],
            fasta,
        ),
        (["generate", "--model", "tiny-1k", "--prompts", f, "--max_new_tokens", "4", "--output", f], fasta),
        (["motifs", "--attributions", str(attributions), "--output", str(attributions.parent)], attributions),
        (["pretrain", "--data.genomes", f'[{{"path": "{run / "g.fa"}"}}]', "--output", str(run), "--overwrite"], None),
        (["finetune", "--data.train", str(table), "--output", str(run), "--overwrite"], table),
    ]


def test_no_command_writes_over_one_of_its_inputs(tmp_path, capsys):
    cases = commands_writing_over_an_input(tmp_path)
    (tmp_path / "run" / "g.fa").write_text(OCT4.read_text()[:2000])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for argv, _ in cases:
        message = error_line(capsys, argv)
        assert "input" in message, (argv, message)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".fai")}
    assert after == {p: b for p, b in before.items() if not p.name.endswith(".fai")}


def test_a_stopped_two_process_score_is_continued_by_one_process(real, tmp_path, monkeypatch):
    import hyenadna.pipelines.score as score_module
    from hyenadna.pipelines.score import run_score

    vcf = "/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz"
    kwargs = dict(model="tiny-1k", vcf=vcf, genome=str(real.ex1_fa), window=64, chunk=4, device="cpu", progress=False)
    run_score(str(tmp_path / "straight.tsv"), **kwargs)
    out = tmp_path / "s.tsv"
    real_rows = score_module._rows
    monkeypatch.setattr(score_module, "launch", lambda trainer: Rank(0, 2, "cpu", lambda: None))
    monkeypatch.setattr(score_module, "_rows", killed_on_call(real_rows, 2))
    with pytest.raises(KeyboardInterrupt):  # rank 0 of 2 stopped on its second chunk: chunk 0 is kept
        run_score(str(out), trainer=Processes(accelerator="cpu", devices=2), **kwargs)
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "s.tsv.parts").glob("chunk*")] == ["chunk000000000.tsv"]
    counted = killed_on_call(real_rows, 0)
    monkeypatch.setattr(score_module, "_rows", counted)
    run_score(str(out), resume=True, **kwargs)
    chunks = -(-(len((tmp_path / "straight.tsv").read_text().splitlines()) - 1) // 4)
    assert counted.calls == chunks - 1  # every chunk but the kept one
    assert out.read_text() == (tmp_path / "straight.tsv").read_text()
    assert not (tmp_path / "s.tsv.parts").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--data.batch_size", "0", "--data.batch_size must be positive, got 0"),
     ("--optim.lr", "-1", "--optim.lr must be greater than 0, got -1"),
     ("--data.val_stride", "0", "--data.val_stride must be positive, got 0"),
     ("--trainer.max_steps", "0", "--trainer.max_steps must be -1 (no limit) or positive"),
     ("--data.genomes", '[{"path": "missing.fa"}]', "missing.fa")],
)  # fmt: skip
def test_a_refused_training_run_leaves_no_run_folder(tmp_path, capsys, option, value, message):
    genomes = f'[{{"path": "{REPO / "data" / "lambda_virus.fa"}"}}]'
    argv = ["pretrain", "--data.genomes", genomes, "--trainer.accelerator", "cpu", "--output", str(tmp_path / "run")]
    assert message in error_line(capsys, [*argv, option, value])
    assert not (tmp_path / "run").exists()


def test_a_refused_finetune_leaves_no_run_folder(tmp_path, capsys):
    argv = ["finetune", "--data.train", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "run")]
    assert "missing.csv" in error_line(capsys, argv)
    assert "--head.dropout must be below 1" in error_line(capsys, [*argv, "--head.dropout", "1"])
    assert not (tmp_path / "run").exists()
