"""``hyenadna explain`` under hostile input (issue 32): every option and path is checked before
the model is loaded or a file is made, outputs never replace inputs or each other, file names
made from record names stay in their folder, and the numbers it reports are this run's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from interrupts import killed_on_call

import hyenadna.pipelines.explain as explain
from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.analysis import attribution_file
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory) -> Path:
    """A tiny language model folder (64 bases) with its weights."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("lm") / "model"
    HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=64)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory) -> Path:
    """A tiny fine-tuned classifier whose first class name holds a ``;``."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("clf") / "model"
    head = HeadConfig("multiclass", ["a;b", "c"], train_length=64)
    SequenceModel(HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=64)), head).save_pretrained(folder)
    return folder


@pytest.fixture
def fasta(tmp_path) -> Path:
    path = tmp_path / "in.fa"
    path.write_text(">r0\nACGTACGTTTGACC\n>r1\nTTGACGTCAGGA\n>r2\nGATTACAGATTACA\n")
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if explain gets as far as loading the model."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(explain, "load_explained_model", refuse)


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_ism_tsv_in_a_missing_folder_is_refused_before_any_work(tmp_path, fasta, lm_folder, no_model):
    """Finding 2: --ism_tsv /nonexistent_dir/x.tsv made folders (at / for an absolute path)."""
    before = listing(tmp_path)
    with pytest.raises(HyenaDNAError, match="does not exist; create it first"):
        explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), methods=["ism"],
                            ism_tsv=str(tmp_path / "missing" / "deeper" / "x.tsv"), progress=False)  # fmt: skip
    assert listing(tmp_path) == before


def test_outputs_that_are_each_other_or_an_input_are_refused(tmp_path, fasta, lm_folder, no_model):
    """Finding 3: --output X --ism_tsv X replaced the HDF5 with the TSV; an output equal to an
    input (the sequences, a file of the model folder) is refused and the input keeps its bytes."""
    out = tmp_path / "x.h5"
    with pytest.raises(HyenaDNAError, match="are the same file"):
        explain.run_explain(str(lm_folder), str(fasta), str(out), methods=["ism"], ism_tsv=str(out), progress=False)
    weights = lm_folder / "model.safetensors"
    original = {path: path.read_bytes() for path in (fasta, weights)}
    for output, ism_tsv, plots in ((fasta, None, None), (weights, None, None), (out, str(fasta), None),
                                   (out, None, str(lm_folder))):  # fmt: skip
        with pytest.raises(HyenaDNAError, match="is the input"):
            explain.run_explain(str(lm_folder), str(fasta), str(output), methods=["ism"], ism_tsv=ism_tsv,
                                plots=plots, progress=False)  # fmt: skip
    assert {path: path.read_bytes() for path in original} == original
    assert not out.exists() and not (tmp_path / "x.h5.parts").exists()


def test_methods_repeated_or_empty_are_refused(tmp_path, fasta, lm_folder, no_model):
    """Finding 4: '[ism, ism]' wrote the ISM rows twice; '[]' ran the defaults."""
    with pytest.raises(HyenaDNAError, match="ism more than once"):
        explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), methods=["ism", "ism"])
    with pytest.raises(HyenaDNAError, match="--methods is empty"):
        explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), methods=[])
    assert listing(tmp_path) == {"in.fa"}


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("max_records", 0, "--max_records must be at least 1"),
        ("max_records", -1, "--max_records must be at least 1"),
        ("steps", 0, "steps must be positive"),
        ("batch_size", 0, "batch_size must be positive"),
        ("chunk", 0, "chunk must be positive"),
        ("plot_records", -2, "--plot_records must be at least 0"),
        ("target_output", "softmax", "--target_output must be one of"),
        ("baseline", "noise", "--baseline must be one of"),
    ],
)
def test_out_of_range_options_are_refused_before_anything_exists(tmp_path, fasta, lm_folder, no_model, option,
                                                                 value, message):  # fmt: skip
    """Finding 5: --max_records -1 explained all but one record; 0 and the zero counts failed
    after OUTPUT.parts/ existed, which then blocked the corrected run."""
    with pytest.raises(HyenaDNAError, match=message):
        explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), **{option: value})
    assert listing(tmp_path) == {"in.fa"}


def test_a_sequence_longer_than_the_model_is_refused_before_the_chunk_folder(tmp_path, lm_folder, monkeypatch):
    """Finding 5: a sequence over the model's length (explain does not tile) failed mid-run."""
    import hyenadna.inference.sharding as sharding

    def not_reached(*args, **kwargs):
        raise AssertionError("run_chunks was reached")

    monkeypatch.setattr(sharding, "run_chunks", not_reached)
    fasta = tmp_path / "long.fa"
    fasta.write_text(">short\nACGTACGT\n>long_one\n" + "ACGT" * 25 + "\n")
    with pytest.raises(HyenaDNAError, match="long_one has 100 bases; attribution takes 2 to 64"):
        explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), progress=False)
    assert listing(tmp_path) == {"long.fa"}


def test_mutants_per_second_counts_only_this_sessions_mutants_after_resume(tmp_path, lm_folder, monkeypatch):
    """Finding 6: after --resume, every record's mutants were divided by this session's time."""
    fasta = tmp_path / "five.fa"
    seqs = ["ACGTTGCAGATTACA", "GATTACANNACGT", "TTGACCA", "ACGTN", "GGGCCCATAT"]
    fasta.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    options = {"methods": ["ism"], "chunk": 2, "progress": False}
    stopped_on_the_second_chunk = killed_on_call(explain.compute_attributions, 2)
    monkeypatch.setattr(explain, "compute_attributions", stopped_on_the_second_chunk)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        explain.run_explain(str(lm_folder), str(fasta), str(out), **options)
    summary = explain.run_explain(str(lm_folder), str(fasta), str(out), resume=True, **options)

    def mutants(s: str) -> int:
        return 3 * len(s) + s.count("N")  # four at an N

    assert summary["ism_mutants"] == sum(mutants(s) for s in seqs[2:])  # the first chunk was the stopped run's
    seconds = summary["seconds"]  # rounded to 0.01 s
    assert summary["ism_mutants"] / (seconds + 0.005) - 0.1 <= summary["mutants_per_s"]
    assert summary["mutants_per_s"] <= summary["ism_mutants"] / max(seconds - 0.005, 1e-9) + 0.1
    straight = explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "all.h5"), **options)
    assert straight["ism_mutants"] == sum(mutants(s) for s in seqs)


def test_plots_pointing_at_a_file_is_refused_before_the_attribution_file(tmp_path, fasta, lm_folder, no_model):
    """Finding 7: --plots FILE failed after the HDF5 was written."""
    target = tmp_path / "picture.png"
    target.write_bytes(b"not a folder")
    with pytest.raises(HyenaDNAError, match="is a file; give a folder"):
        explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), plots=str(target))
    assert listing(tmp_path) == {"in.fa", "picture.png"} and target.read_bytes() == b"not a folder"


def test_plot_file_names_from_record_names_stay_in_the_plots_folder(tmp_path, lm_folder):
    """Finding 1 (explain's --plots): record names made the picture names; a name that climbs
    folders stays inside, and one longer than a file name may be is cut (it failed with
    'File name too long' after the HDF5 was written)."""
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">../../escaped\nACGTACGTAC\n>{'x' * 300}\nGATTACAGAT\n")
    plots = tmp_path / "plots"
    summary = explain.run_explain(str(lm_folder), str(fasta), str(tmp_path / "a.h5"), methods=["grad_x_input"],
                                  plots=str(plots), plot_records=2, progress=False)  # fmt: skip
    written = [Path(p) for p in summary["plots"]]
    assert len(written) == 2 and all(p.resolve().parent == plots.resolve() and p.is_file() for p in written)
    assert written[0].name == "0000_escaped.grad_x_input.png" and len(written[1].name) < 255
    assert listing(tmp_path) == {"in.fa", "a.h5", "plots", *(f"plots/{p.name}" for p in written)}


def test_labels_holding_a_semicolon_round_trip(tmp_path, classifier_folder):
    """Finding 8: labels were stored joined by ';', so a label holding one came back split."""
    fasta = tmp_path / "labelled.fa"
    fasta.write_text(">r0 label=a;b\nACGTACGTACGT\n>r1 label=c\nGATTACAGATTA\n")
    out = tmp_path / "a.h5"
    explain.run_explain(str(classifier_folder), str(fasta), str(out), methods=["grad_x_input"], progress=False)
    data = attribution_file.read_attributions(out, "grad_x_input")
    assert data["outputs"] == ["a;b", "c"] and data["labels"] == [("a;b",), ("c",)]


def test_a_model_folder_without_head_weights_gets_the_loaders_error(tmp_path, fasta, classifier_folder):
    """The refusal of an incomplete fine-tuned folder is the loader's, and leaves nothing."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(classifier_folder, broken)
    (broken / "head.safetensors").unlink()
    with pytest.raises(HyenaDNAError, match="no head.safetensors; this fine-tuned model folder is incomplete"):
        explain.run_explain(str(broken), str(fasta), str(tmp_path / "a.h5"), progress=False)
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "a.h5.parts").exists()


def test_a_non_hdf5_or_torn_attribution_file_is_one_line(tmp_path):
    """Finding 9 (the reader motifs uses): a file that is not HDF5, or whose datasets do not fit
    together, is refused naming the file."""
    import h5py

    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(HyenaDNAError, match="notes.h5 is not an HDF5 file"):
        attribution_file.read_attributions(text, "ism")
    torn = tmp_path / "torn.h5"
    explain.write_attributions(str(torn), ["a"], ["ACGT"], None, ["y"], {"ism": [np.zeros((4, 4, 1))]}, {})
    with h5py.File(torn, "r+") as h5:
        del h5["offsets"]
        h5["offsets"] = np.array([0, 9])
    with pytest.raises(HyenaDNAError, match="torn.h5: not a consistent attribution file"):
        attribution_file.read_attributions(torn, "ism")
    with pytest.raises(HyenaDNAError, match="method must be one of"):
        attribution_file.read_attributions(torn, "offsets")
