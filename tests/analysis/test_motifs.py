"""Motifs from attributions: JASPAR reading and matching, seqlets and patterns on planted motifs,
and the whole path on the Oct4 / MafK task (a CNN fine-tuned in the test, its attributions, the
motif step, JASPAR 2016 from Debian's pscan-chip-data)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from interrupts import killed_on_call

from hyenadna.analysis.motifs import discover_motifs, match_score, onehot, read_jaspar
from hyenadna.errors import HyenaDNAError

JASPAR_2016 = Path("/usr/share/pscan-chip/jaspar_2016.wil")
REPO = Path(__file__).resolve().parents[2]
TF_TASK = REPO / "data" / "tasks" / "tf_oct4_mafk.csv.gz"
MAF_FAMILY = ("MAFK", "MAFF", "MAFG", "Mafb", "MAFB", "Bach1::Mafk", "MAF::NFE2", "NFE2", "Nfe2l2", "MAFA")


def test_read_jaspar_pscan_and_flat_formats(tmp_path):
    database = read_jaspar(JASPAR_2016)
    assert len(database) == 635
    mafk = next(m for m in database if m.id == "MA0496.1")
    assert mafk.name == "MAFK" and mafk.counts.shape == (15, 4)
    assert mafk.counts[5].tolist() == [0, 261, 0, 60529]  # the T of TGCTGA, column 6 of the file's rows
    np.testing.assert_allclose(mafk.ppm().sum(1), 1)
    flat = tmp_path / "one.jaspar"
    flat.write_text(">MA0001.1 TOY\nA [ 10 0 0 ]\nC [ 0 10 0 ]\nG [ 0 0 10 ]\nT [ 0 0 0 ]\n")
    (toy,) = read_jaspar(flat)
    assert (toy.id, toy.name) == ("MA0001.1", "TOY") and toy.counts[:, :3].argmax(1).tolist() == [0, 1, 2]
    bad = tmp_path / "bad.jaspar"
    bad.write_text(">MA0002.1 BAD\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 x ]\nT [ 1 2 ]\n")
    with pytest.raises(HyenaDNAError, match=r"bad.jaspar, line 4: not a row of counts"):
        read_jaspar(bad)
    bad.write_text(">MA0002.1 BAD\nA [ 1 2 ]\nC [ 1 2 ]\n")
    with pytest.raises(HyenaDNAError, match="does not have four rows"):
        read_jaspar(bad)


def test_match_score_finds_a_matrix_on_either_strand():
    database = read_jaspar(JASPAR_2016)
    mafk = next(m for m in database if m.id == "MA0496.1").ppm()
    assert match_score(mafk, mafk)[0] == pytest.approx(1.0)
    core = mafk[3:11]
    score, offset, strand = match_score(core[::-1, ::-1], mafk)  # reverse complement of a piece
    assert score == pytest.approx(1.0) and (offset, strand) == (3, "-")
    uniform = np.full((8, 4), 0.25)
    assert match_score(uniform, mafk)[0] == 0


def planted(n: int, motif: str, seed: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """Random sequences, half with ``motif`` (either strand) at a random place, and attributions
    that single out the motif's bases (plus noise)."""
    from hyenadna.data.tokenizer import reverse_complement

    rng = np.random.default_rng(seed)
    seqs, scores = [], []
    for i in range(n):
        seq = list(rng.choice(list("ACGT"), 120))
        weight = np.abs(rng.normal(0, 0.05, 120))
        if i % 2 == 0:
            site = motif if rng.random() < 0.5 else reverse_complement(motif)
            at = int(rng.integers(15, 120 - 15 - len(motif)))
            seq[at : at + len(site)] = site
            weight[at : at + len(site)] += 1.0
        text = "".join(seq)
        seqs.append(text)
        scores.append(onehot(text) * weight[:, None])
    return seqs, scores


def test_planted_motif_is_recovered_and_matched():
    seqs, scores = planted(300, "TGCTGACTCAGCA")  # the MAF recognition element (MARE)
    patterns = discover_motifs(seqs, scores, read_jaspar(JASPAR_2016), quantile=0.9)
    assert patterns and len(patterns[0].seqlets) >= 100
    consensus = patterns[0].consensus.upper()
    assert "GCTGACTCAGC" in consensus or "GCTGAGTCAGC" in consensus  # the MARE is its own reverse complement
    assert patterns[0].matches[0]["name"] in MAF_FAMILY and patterns[0].matches[0]["score"] > 0.8
    with pytest.raises(HyenaDNAError, match="sequence 1: attributions of shape"):
        discover_motifs(seqs[:2], [scores[0], scores[1][:5]])


@pytest.fixture(scope="module")
def tf_cnn(tmp_path_factory) -> Path:
    """A CNN fine-tuned on the Oct4 / MafK task by the package's own loop (about half a minute)."""
    from hyenadna.heads.config import HeadOptions
    from hyenadna.pipelines.finetune import run_finetune
    from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

    out = tmp_path_factory.mktemp("tf_cnn") / "run"
    result = run_finetune(
        LabelledData(train=str(TF_TASK), reader={"split_col": "split", "name_col": "name"}, batch_size=32, rc_prob=0.5),
        ModelOptions("cnn"),
        HeadOptions(),
        FinetuneOptions(patience=0, baseline=False),
        trainer=TrainerOptions(
            max_steps=-1,
            max_epochs=3,
            val_every_n_steps=0,
            checkpoint_every_n_steps=0,
            accelerator="cpu",
            devices=1,
            progress_bar=False,
        ),
        output=str(out),
    )
    assert result["test"]["mcc"] > 0.85
    return out


@pytest.mark.slow
def test_oct4_and_mafk_motifs_are_recovered_from_a_fine_tuned_model(tf_cnn, tmp_path):
    from hyenadna.analysis.attribution_file import read_attributions
    from hyenadna.pipelines.explain import run_explain
    from hyenadna.pipelines.motifs import run_motifs

    attributions = tmp_path / "attr.h5"
    summary = run_explain(str(tf_cnn / "model"), str(TF_TASK), str(attributions), methods=["grad_x_input"],
                          reader={"split_col": "split", "name_col": "name"}, split="test",
                          plots=str(tmp_path / "plots"), plot_records=1, progress=False)  # fmt: skip
    assert summary["records"] == 1097 and summary["outputs"] == ["MafK", "Oct4"]
    assert (tmp_path / "plots").is_dir() and any((tmp_path / "plots").glob("*.grad_x_input.png"))
    data = read_attributions(attributions, "grad_x_input")
    assert len(data["arrays"]) == 1097 and data["arrays"][0].shape == (len(data["sequences"][0]), 4, 2)
    with h5py.File(attributions) as h5:
        assert h5.attrs["complete"] and h5["offsets"][-1] == sum(len(s) for s in data["sequences"])
    result = run_motifs(str(attributions), str(tmp_path / "motifs"), method="grad_x_input")
    report = json.loads((tmp_path / "motifs" / "motifs.json").read_text())
    mafk = report["outputs"]["MafK"]["patterns"]
    oct4 = report["outputs"]["Oct4"]["patterns"]
    assert mafk[0]["matches"][0]["name"] in MAF_FAMILY and mafk[0]["matches"][0]["score"] > 0.8, result
    oct4_best = [p["matches"][0]["name"] for p in oct4[:3]]
    assert any(name.upper().startswith(("POU", "POU5F1")) for name in oct4_best), result
    assert (tmp_path / "motifs" / "motifs.meme").read_text().count("MOTIF ") == len(mafk) + len(oct4)
    assert any((tmp_path / "motifs" / "logos").glob("MafK_pattern0.png"))


@pytest.mark.slow
def test_variant_effects_through_the_fine_tuned_cnn(tf_cnn, real, tmp_path):
    """score --head_model with a really fine-tuned head: pysam's ex1.vcf.gz (every record's contig
    or position is reported, none crashes) and real chr20 indels (deltas of the two classes that
    cancel, windows of the head's 200-base training length)."""
    import csv

    from hyenadna.cli import main

    ex1 = tmp_path / "ex1.tsv"
    main(["score", "--head_model", str(tf_cnn / "model"), "--vcf",
          "/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz", "--genome", str(real.ex1_fa), "--output",
          str(ex1), "--progress", "false"])  # fmt: skip
    with open(ex1) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 165 and {r["status"] for r in rows} == {"unknown_contig", "out_of_range"}
    chr20 = tmp_path / "chr20.tsv"
    main(["score", "--head_model", str(tf_cnn / "model"), "--vcf", "/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz",
          "--genome", str(real.chr20), "--output", str(chr20), "--rc_average", "--progress", "false"])  # fmt: skip
    with open(chr20) as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["status"] == "ok"]
    assert len(rows) == 194
    deltas = np.array([[float(r["delta_MafK"]), float(r["delta_Oct4"])] for r in rows])
    np.testing.assert_allclose(deltas.sum(1), 0, atol=1e-5)
    assert np.abs(deltas).max() > 1e-3


def test_explain_command_writes_ism_table_and_refuses_bad_requests(tmp_path, capsys):
    from hyenadna.analysis.attribution_file import read_attributions
    from hyenadna.cli import main

    fasta = tmp_path / "two.fa"
    fasta.write_text(">a\nACGTACGTTTGACCA\n>b\nTTGACGTCAN\n")
    out, tsv = tmp_path / "lm.h5", tmp_path / "lm_ism.tsv"
    main(["explain", "--model", "tiny-1k-chr20", "--input", str(fasta), "--output", str(out), "--methods",
          "[ism, integrated_gradients]", "--steps", "4", "--ism_tsv", str(tsv), "--progress", "false"])  # fmt: skip
    ism = read_attributions(out, "ism")
    assert ism["outputs"] == ["log_likelihood"] and ism["labels"] is None
    lines = tsv.read_text().splitlines()
    assert lines[0] == "name\tposition\tref\talt\tdelta_log_likelihood"
    assert len(lines) - 1 == 3 * 15 + 3 * 9 + 4  # three alternatives per base, four at the N
    name, position, ref, alt, delta = lines[1].split("\t")
    assert (name, position, ref, alt) == ("a", "1", "A", "C")
    assert float(delta) == pytest.approx(float(ism["arrays"][0][0, 1, 0]), rel=1e-5)
    with pytest.raises(SystemExit):
        main(["explain", "--model", "tiny-1k-chr20", "--input", str(fasta), "--output", str(out)])
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["explain", "--model", "tiny-1k-chr20", "--input", str(fasta), "--output", str(tmp_path / "x.h5"),
              "--methods", "[saliency]"])  # fmt: skip
    assert "methods must be some of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["motifs", "--attributions", str(out), "--method", "grad_x_input", "--output", str(tmp_path / "m")])
    assert "holds no 'grad_x_input' attributions" in capsys.readouterr().err


def test_explain_stopped_on_a_chunk_resumes_to_the_straight_run(tmp_path, monkeypatch):
    import hyenadna.pipelines.explain as explain
    from hyenadna.analysis import attribution_file

    fasta = tmp_path / "five.fa"
    fasta.write_text("".join(f">r{i}\n{'ACGTTGCA'[i:] + 'GATTACA' * (i + 1)}\n" for i in range(5)))
    options = {"methods": ["ism", "grad_x_input"], "chunk": 2, "progress": False}
    explain.run_explain("tiny-1k-chr20", str(fasta), str(tmp_path / "straight.h5"), **options)
    stopped_on_the_second_chunk = killed_on_call(explain.compute_attributions, 2)
    monkeypatch.setattr(explain, "compute_attributions", stopped_on_the_second_chunk)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        explain.run_explain("tiny-1k-chr20", str(fasta), str(out), **options)
    assert not out.exists() and [p.name for p in (tmp_path / "out.h5.parts").glob("chunk*")] == ["chunk000000000.npz"]
    explain.run_explain("tiny-1k-chr20", str(fasta), str(out), resume=True, **options)
    assert stopped_on_the_second_chunk.calls == 2 + 2  # the second and third chunks, not the first again
    for method in options["methods"]:
        a, b = (
            attribution_file.read_attributions(tmp_path / "straight.h5", method),
            attribution_file.read_attributions(out, method),
        )
        assert a["names"] == b["names"] and len(a["arrays"]) == len(b["arrays"]) == 5
        for x, y in zip(a["arrays"], b["arrays"]):
            np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
