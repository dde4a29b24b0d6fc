"""``hyenadna motifs`` under hostile input (issue 32): output names cannot place files outside the
output folder, labels holding ``;`` survive, bad JASPAR matrices and options are refused before
anything is written, and ``--overwrite`` replaces the previous run's logos, nothing else."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hyenadna.analysis.attribution_file import read_attributions, write_attributions
from hyenadna.analysis.motifs import read_jaspar
from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.motifs import run_motifs

MOTIFS = ("TGCTGACTCA", "CACGTGAAAT")
TOY_JASPAR = ">MA0001.1 TOY\nA [ 10 0 0 0 ]\nC [ 0 10 0 0 ]\nG [ 0 0 10 0 ]\nT [ 0 0 0 10 ]\n"
FAST = {"min_seqlets": 5, "quantile": 0.5}


def planted_file(path: Path, outputs: list[str], labels: list[tuple[str, ...]] | None = None, n: int = 16) -> Path:
    """An attribution file of ``n`` sequences per output, each holding that output's motif,
    whose attributions toward that output single the motif out."""
    rng = np.random.default_rng(0)
    names, seqs, arrays = [], [], []
    for k, motif in enumerate(MOTIFS[: len(outputs)]):
        for i in range(n):
            seq = list(rng.choice(list("ACGT"), 80))
            at = int(rng.integers(20, 50))
            seq[at : at + len(motif)] = motif
            array = np.zeros((80, 4, len(outputs)), np.float32)
            array[np.arange(80), ["ACGT".index(b) for b in seq], k] = 0.02
            array[np.arange(at, at + len(motif)), ["ACGT".index(b) for b in motif], k] = 1.0
            names.append(f"s{k}_{i}")
            seqs.append("".join(seq))
            arrays.append(array)
    write_attributions(str(path), names, seqs, labels, outputs, {"grad_x_input": arrays}, {})
    return path


@pytest.fixture
def jaspar(tmp_path) -> Path:
    path = tmp_path / "toy.jaspar"
    path.write_text(TOY_JASPAR)
    return path


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_output_names_cannot_place_logos_outside_the_output_folder(tmp_path, jaspar):
    """Finding 1: a label '../../../x', or an output name that is an absolute path, named logo
    files outside the output folder."""
    base = tmp_path / "a" / "b"
    base.mkdir(parents=True)
    escape = str(tmp_path / "abs" / "y")
    attributions = planted_file(tmp_path / "attr.h5", ["../../../x", escape])
    out = base / "out"
    result = run_motifs(str(attributions), str(out), jaspar=str(jaspar), **FAST)
    assert result["logos"] == 2
    ids = ["x_pattern0", escape.strip("/").replace("/", "_") + "_pattern0"]
    assert sorted(p.name for p in (out / "logos").iterdir()) == sorted(f"{i}.png" for i in ids)
    assert files(tmp_path) == {"attr.h5", "toy.jaspar", "a", "a/b", "a/b/out", *(f"a/b/out/{f}" for f in files(out))}
    report = json.loads((out / "motifs.json").read_text())
    assert set(report["outputs"]) == {"../../../x", escape} and report["logos"] == [f"{i}.png" for i in ids]
    meme = (out / "motifs.meme").read_text().splitlines()
    assert [line.split()[1] for line in meme if line.startswith("MOTIF")] == ids


def test_a_label_holding_a_semicolon_keeps_its_sequences_and_patterns(tmp_path, jaspar):
    """Finding 8: labels were joined by ';' in the file, so 'A;B' came back as 'A' and 'B' and
    the output 'A;B' had no sequences, hence no patterns."""
    labels = [("A;B",)] * 16 + [("C",)] * 16
    attributions = planted_file(tmp_path / "attr.h5", ["A;B", "C"], labels)
    assert read_attributions(attributions, "grad_x_input")["labels"] == labels
    run_motifs(str(attributions), str(tmp_path / "out"), jaspar=str(jaspar), **FAST)
    report = json.loads((tmp_path / "out" / "motifs.json").read_text())
    assert report["outputs"]["A;B"]["sequences"] == 16 and report["outputs"]["A;B"]["patterns"]


def test_files_of_the_earlier_semicolon_encoding_are_still_read(tmp_path):
    """Finding 8: an attribution file written before the JSON labels (joined by ';') reads as before."""
    import h5py

    path = planted_file(tmp_path / "attr.h5", ["A", "B"], [("A",)] * 16 + [("A", "B")] * 16)
    with h5py.File(path, "r+") as h5:
        del h5["labels"]
        h5.create_dataset("labels", data=np.array(["A"] * 16 + ["A;B"] * 16, dtype=object),
                          dtype=h5py.string_dtype("utf-8"))  # fmt: skip
        del h5.attrs["labels_encoding"]
    assert read_attributions(path, "grad_x_input")["labels"][15:17] == [("A",), ("A", "B")]


@pytest.mark.parametrize(
    "row, message",
    [
        ("A [ nan 0 0 0 ]", "NaN or infinite counts"),
        ("A [ inf 0 0 0 ]", "NaN or infinite counts"),
        ("A [ -5 0 0 0 ]", "negative counts"),
        ("A [ 0 0 0 0 ]", "no counts in column 1"),
    ],
)
def test_jaspar_matrices_with_impossible_counts_are_refused(tmp_path, row, message):
    """Finding 9: NaN, infinite, negative or all-zero counts were accepted and matched."""
    path = tmp_path / "bad.jaspar"
    path.write_text(TOY_JASPAR + ">MA0002.1 BAD\n" + row + "\nC [ 0 1 0 0 ]\nG [ 0 0 1 0 ]\nT [ 0 0 0 1 ]\n")
    with pytest.raises(HyenaDNAError, match=rf"bad.jaspar, line 6: matrix MA0002.1 has {message}"):
        read_jaspar(path)


def test_a_gzipped_jaspar_file_is_read_and_a_binary_one_refused(tmp_path):
    """Finding 9: a gzipped JASPAR file failed with a UnicodeDecodeError traceback (and a bare
    '>' header with an IndexError)."""
    packed = tmp_path / "toy.jaspar.gz"
    packed.write_bytes(gzip.compress(TOY_JASPAR.encode()))
    (toy,) = read_jaspar(packed)
    assert toy.id == "MA0001.1" and toy.counts.shape == (4, 4)
    binary = tmp_path / "binary.jaspar"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(HyenaDNAError, match="binary.jaspar: not a text file of JASPAR matrices"):
        read_jaspar(binary)
    binary.write_text(">\nA [ 1 ]\n")
    with pytest.raises(HyenaDNAError, match="binary.jaspar, line 1: a '>' header without a matrix id"):
        read_jaspar(binary)


def test_a_non_hdf5_attribution_file_is_one_line_on_the_command_line(tmp_path, capsys):
    """Finding 9: motifs on a file that is not HDF5 printed h5py's traceback."""
    from hyenadna.cli import main

    text = tmp_path / "attr.h5"
    text.write_text("hello\n")
    with pytest.raises(SystemExit) as stop:
        main(["motifs", "--attributions", str(text), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "attr.h5 is not an HDF5 file" in err
    assert files(tmp_path) == {"attr.h5"}


def test_overwrite_removes_the_replaced_runs_logos_and_nothing_else(tmp_path, jaspar):
    """Finding 10: --overwrite left the previous run's logos when the new run found none."""
    attributions = planted_file(tmp_path / "attr.h5", ["A", "B"])
    out = tmp_path / "out"
    assert run_motifs(str(attributions), str(out), jaspar=str(jaspar), **FAST)["logos"] == 2
    (out / "logos" / "mine.png").write_bytes(b"a picture of mine")
    (out / "notes.txt").write_text("mine too")
    with pytest.raises(HyenaDNAError, match="exists; pass --overwrite"):
        run_motifs(str(attributions), str(out), jaspar=str(jaspar), **FAST)
    result = run_motifs(str(attributions), str(out), jaspar=str(jaspar), overwrite=True, min_seqlets=1000)
    assert result["logos"] == 0 and result["patterns"] == {"A": [], "B": []}
    assert files(out) == {"logos", "logos/mine.png", "notes.txt", "motifs.json", "motifs.tsv", "motifs.meme"}


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("flank", -1, "--flank must be at least 0"),
        ("per_sequence", -1, "--per_sequence must be at least 1"),
        ("top", -3, "--top must be at least 1"),
        ("core", 0, "--core must be at least 1"),
        ("quantile", 1.5, "--quantile must lie in 0..1"),
        ("min_similarity", 1.5, "--min_similarity must lie in -1..1"),
        ("min_similarity", -2.0, "--min_similarity must lie in -1..1"),
        ("min_seqlets", 0, "--min_seqlets must be at least 1"),
        ("targets", [], "--targets is empty"),
        ("targets", ["A", "A"], "names 'A' more than once"),
        ("method", "names", "method must be one of"),
    ],
)
def test_out_of_range_options_are_refused_before_anything_is_written(tmp_path, jaspar, option, value, message):
    """Finding 11: negative --flank, --per_sequence, --top were accepted; --core 0 and
    --quantile 1.5 failed with tracebacks."""
    attributions = planted_file(tmp_path / "attr.h5", ["A", "B"], n=2)
    with pytest.raises(HyenaDNAError, match=message):
        run_motifs(str(attributions), str(tmp_path / "out"), jaspar=str(jaspar), **{option: value})
    assert files(tmp_path) == {"attr.h5", "toy.jaspar"}


def test_an_output_that_is_a_file_or_has_no_parent_is_refused(tmp_path, jaspar):
    """Finding 11: an --output that is a file failed with a traceback; its parent must exist."""
    attributions = planted_file(tmp_path / "attr.h5", ["A"], n=2)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(HyenaDNAError, match="is a file; give a folder"):
        run_motifs(str(attributions), str(taken), jaspar=str(jaspar))
    with pytest.raises(HyenaDNAError, match="does not exist; create it first"):
        run_motifs(str(attributions), str(tmp_path / "no" / "out"), jaspar=str(jaspar))
    assert files(tmp_path) == {"attr.h5", "toy.jaspar", "taken"} and taken.read_text() == "mine"


def test_the_inputs_are_never_an_output(tmp_path, jaspar):
    """Finding 12: an attribution file named motifs.json in the output folder (or a JASPAR file
    named motifs.meme) would be replaced by the output; refused, bytes unchanged."""
    out = tmp_path / "out"
    out.mkdir()
    attributions = planted_file(out / "motifs.json", ["A"], n=2)
    meme = out / "motifs.meme"
    meme.write_text(TOY_JASPAR)
    before = {p: p.read_bytes() for p in (attributions, meme)}
    with pytest.raises(HyenaDNAError, match=r"--output \(motifs.json\) .* is the input --attributions"):
        run_motifs(str(attributions), str(out), overwrite=True)
    other = planted_file(tmp_path / "attr.h5", ["A"], n=2)
    with pytest.raises(HyenaDNAError, match=r"--output \(motifs.meme\) .* is the input --jaspar"):
        run_motifs(str(other), str(out), jaspar=str(meme), overwrite=True)
    assert {p: p.read_bytes() for p in before} == before and files(out) == {"motifs.json", "motifs.meme"}
